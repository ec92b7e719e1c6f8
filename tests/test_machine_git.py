"""The commit recorded with every result: MBV2_GIT_COMMIT wins over the tree's own .git.

A copy of the tree on a GPU machine can carry a stale .git (the committed H100 run of session 2 was first
recorded as an older, "dirty" commit that way); `make bench` passes the checkout's commit in the
environment, and that is what must be recorded.
"""

from __future__ import annotations

from mbv2.machine import git_info


def test_environment_commit_wins_over_the_trees_git(monkeypatch):
    monkeypatch.setenv("MBV2_GIT_COMMIT", "0123abcd")
    monkeypatch.setenv("MBV2_GIT_DIRTY", "0")
    info = git_info()
    assert info["commit"] == "0123abcd" and info["dirty"] is False
    assert "MBV2_GIT_COMMIT" in info["source"]


def test_without_environment_the_commit_comes_from_git_or_says_why(monkeypatch):
    monkeypatch.delenv("MBV2_GIT_COMMIT", raising=False)
    info = git_info()
    assert info["commit"] or info.get("reason")
