"""The custom backend's kernel catalogue and build: which .cu files, which versions, how they compile.

Importable without CuPy or a GPU: tests/test_kernels_compile.py uses the same flags and the same
list of default kernels as the backend, so the spill check covers exactly what runs by default.

Versions per op family (the idea of each is in the header comment of its .cu file):
    gemm       v1 naive, v2 shared-memory tiles, v3 register-blocked + float4, v4 v3 + double buffer,
               v5 v4 + split-K (deterministic reduce) when the output tiles cannot fill the GPU,
               v6 v5 + a streaming kernel for K in (16, 24, 32) (B slice in registers),
               v7 v5 + fp32-accurate 3xTF32 tensor-core tiles (mma.sync, operands split big + small),
               v8 v5 + SIMT tiles with BK = 16, a cp.async ring and broadcast LDS.128 fragments (x96 / x160 tiles
               too) as autotune candidates: the 14x14 / 7x7 pointwise convs at batch 64 / 256,
               v9 v8 + 96- and 32-row tiles (even block counts on the 14x14 maps at batch 64)
               v10 v9 + k-sliced v8 tiles (KS thread groups split each 16-wide k-step, partials summed in shared
               memory: 8x8 / 8x12 / 8x20 thread tiles on the 32-row tiles that fill the SMs at batch 64)
               v11 v10 + 64-row k-sliced tiles (7x7 maps at batch 64, batch 256; the default since session 11:
               interleaved A/B on the H200 faster at batch 8 / 64 / 256)
    stem       v1 im2col + GEMM, v2 direct conv (weights in shared memory), v3 direct 3x3x3 specialised
    depthwise  v1 direct, v2 shared-memory tiles, v3 float4 register-blocked (C % 4 == 0, else v2)
    pool       v1 block per (n, c) + warp shuffles, v2 channels across threads, v3 v2 + split HW
    linear     v1 GEMM, v2 GEMV for batch <= 8 (GEMM above), v3 v2 with a lane's whole W row slice requested before
               the first FMA (one L2 round trip per pass instead of one per 128 inputs; IN % 4 == 0, else v2),
               v4 v3 + above batch 8 (to LINEAR_C8_MAX_BATCH) one cluster kernel instead of the split-K GEMM and its
               reduce (linear_c8, kernels/cblock.cu: clusters of 8 blocks split K, DSMEM reduce; IN % 4, OUT % 8);
               measured SLOWER than v3 at every batch on the H200 (session 13: batch 64 20.6 vs 14.9 us alone): kept
               selectable, not the default,
               v5 v3 with the GEMV at batch <= LINEAR_PDL_MAX_BATCH (1) launched by programmatic dependent launch
               (sm_90+, cuLaunchKernelEx): it requests its weight rows while the previous kernel runs (pwpool_c8
               triggers its dependents at entry), then griddepcontrol.wait, then reads x (linear_gemv_v5,
               kernels/linear.cu); H200: batch 1 -0.7 us (8 interleaved pairs), the default since session 14,
               v6 v5 with x staged once per block in shared memory after the wait (linear_gemv_v6: v5's warps each
               read the whole x from L2, 1000 x 5 KB of requests for the same lines); the same sums (bit-identical
               logits); needs N * IN * 4 <= LINEAR_V6_MAX_SMEM, else v5's kernel (a fallback record); H100,
               session 40: batch 1 0.1104 ms against v5's 0.1102 (6 instances each): no gain, not the default
    add        v1 grid-stride scalar, v2 grid-stride float4
    fuse       v1 none (one kernel per layer), v2 depthwise 3x3 + ReLU6 computed inside the A-tile
               staging of the following pointwise GEMM (+ residual): one launch per dw + project pair
               (correct; measured slower at batch 64/256 on H100, so not the default),
               v3 the expansion 1x1 conv (CIN in EXDW_CIN) computed inside the 3x3 depthwise conv that
               reads it (exdw, kernels/conv.cu): the expanded tensor never goes to device memory,
               v4 v3 register-blocked (exdw4: the expansion as a small GEMM, 4 channels x PP pixels per thread),
               v5 the whole small-CIN bottleneck block (expansion + depthwise + projection + residual) in one
               kernel (exdwpw5: every expanded channel of a spatial tile, the depthwise output in shared memory
               too), autotuned per block against the v4 pair + projection GEMM,
               v6 v5 + every bottleneck block (any CIN) as ONE kernel at small batch (exdwpw6, kernels/cblock.cu):
               thread-block clusters of 8 split the EXPANDED channels, each block runs its channels through all
               three convs and the projection partials are reduced through distributed shared memory (and across
               clusters by the last-arriving one); at batch <= EXDWPW6_MAX_BATCH on maps <= EXDWPW6_MAX_MAP, v5
               elsewhere,
               v7 v6 + above batch 1 the 14x14 / 7x7 blocks' depthwise conv in the epilogue of their expansion GEMM
               (exgdw, kernels/gemm.cu: whole-image M tiles), autotuned per pair against the two kernels,
               v8 v7 + the small-CIN blocks' exdwpw8 builds (kernels/conv.cu: exdwpw5 with larger register tiles,
               split-K projection, 2 blocks per SM) as autotune candidates beside exdwpw5 and the pair,
               v9 v8 + two small-batch changes: at batch <= PWPOOL_MAX_BATCH the network's last pointwise conv (+ ReLU6)
               and the global average pool after it as one kernel on maps of <= PWPOOL_MAX_HW pixels (pwpool_c8,
               kernels/cblock.cu: clusters of 8 blocks split K, where COUT % 64 == 0; else pwpool, kernels/pool.cu),
               smaller exdwpw5 tiles (EXDWPW5_V9_INSTANCES) where the larger ones leave SMs idle, and the exdwpw6
               cost model's configurations of up to 2 blocks per SM (v6 - v8: 1),
               v10 v9 + at batch <= EXDWPW6_MAX_BATCH the cluster block kernels replaced by exdwpw10 (kernels/cblock.cu:
               one cooperative kernel per block, expansion + depthwise split over the expanded channels into L2, a grid
               barrier, the projection split over output tiles: no partial sums; session 12 on the H200: correct,
               but slower than v9 at batch 1, 0.2033 vs 0.1755 ms; its own branch: K.two_phase),
               v11 v9 + at batch 1 (EXDWPW5_BIG_CHUNK_MAX_BATCH) the three small-tile exdwpw5 blocks' builds with
               larger chunks of expanded channels (EXDWPW5_BIG_CHUNK: fewer weight stagings and barriers per block),
               v12 v11 + at batch <= PWPOOL_PDL_MAX_BATCH pwpool_c8 launched by programmatic dependent launch (sm_90+,
               cuLaunchKernelEx): it requests its weight slice while the last block kernel finishes (exdwpw6 triggers
               its dependents after its cluster reduce), then griddepcontrol.wait, then its input rows; H200,
               session 14: SLOWER at batch 1 (+2.7 us, 4 interleaved pairs): kept selectable, not the default (and
               not carried into later versions: pwpool_pdl),
               v13 v11 + at batch 1 each exdwpw6 block's configuration autotuned among every one of one wave,
               including the wider builds (EXDWPW6_WIDE: 24 / 36 / 40 expanded channels per block, or non-portable
               clusters of 16 blocks), which need fewer clusters per row tile (NG; 1 on the 28x28 blocks and the
               14x14 ones of CE 384 / 576: no global hand-off, no last cluster's sum); the cost model (which weighs
               the wider builds too) where the tuner is off; H200, session 15: batch 1 0.1726 -> 0.1559 ms (3
               interleaved instance pairs); and at batch 2 and 3 too (EXDWPW6_V13_MAX_BATCH: 0.2344 -> 0.2123 ms,
               0.2765 -> 0.2626 ms, 2 pairs each);
               the default in session 15,
               v14 v13 + exdwpw6 builds with clusters of 4, 6 and 12 blocks (EXDWPW6_V14: CE 144 with one cluster per
               row tile) as tuner candidates on every block, and on the three 56x56 blocks (maps above
               EXDWPW6_MAX_MAP) at batch <= EXDWPW6_V13_MAX_BATCH every one-wave exdwpw6 configuration timed against
               v5's path (exdwpw5 / exdwpw8 / pair: what v13 runs there); untimed (tuner off, captures) as v13;
               H200, session 16: exdwpw6 1-3 us slower than v5's kernels on each 56x56 block, batch 1 unchanged
               (0.1554 / 0.1566 vs 0.1565 / 0.1552 ms): kept selectable, not carried into later versions,
               v15 v13 + each exdwpw6 block's tuner candidates include v13's builds at 512 threads per block
               (EXDWPW6_T512, exdwpw6_c<CH>[x<CL>]_t512: one block per SM, twice the warps over each phase's items);
               H200, session 16: batch 1 0.1561 -> 0.1543 ms (2 interleaved instance pairs); the default in
               session 16,
               v16 v15 + exdwpw6's projection phase by output columns (proj_cols: lane = output channel, its CH
               weights in registers, each pixel's depthwise row a broadcast; bit-identical sums), timed per block
               against the pixel-lane mapping for the configuration the tuner picked (untimed: on COUT >=
               PROJ_COLS_MIN_COUT); H200, session 16, against v15 (2 interleaved instance pairs): batch 1 0.1546 ->
               0.1526 ms, batch 2 0.2096 -> 0.2056, batch 3 0.2581 -> 0.2473; the default since session 16,
               v17 v16 + exdwpw6's expansion and projection phases in lane tiles of 4 pixels x 4 channels (kernel
               arguments ex_ks: the expansion's k range split over ex_ks lanes of a warp, 0 = v16's pixel-lane
               expansion; proj_cols 2: the projection's tiles; H200, session 16's stamps: both phases are bound by
               shared-memory returns, 1.25 registers loaded per FMA, 0.5 in these tiles): the tuner's first stage
               runs EX_KS_RULE / proj_cols 2, then times proj_cols 0 / 1 / 2, then ex_ks 0 / 1 / 2 / 4 / 8;
               H200, session 17, against v16 (2 interleaved instance pairs): batch 1 0.1538 -> 0.1423 ms, batch 2
               0.2075 -> 0.1903, batch 3 0.2501 -> 0.2265; the default since session 17,
               v18 v17 + exdwpw6's cluster reduce with its epilogue's bias / residual requested before the cluster
               barrier and the peers' partials requested 8 at a time before they are added (kernel argument red_pf;
               bit-identical to v17); H200, session 17, against v17 (2 interleaved instance pairs): batch 1 0.1449 /
               0.1449 -> 0.1441 / 0.1453 ms, batch 2 -0.9 us, batch 3 +0.1 us: no measurable change (ptxas likely
               hoists the loads already),
               v19 v18 + the projection's lane tiles also at 2 pixels x 4 channels (proj_cols 3: twice the tiles of
               proj_cols 2, for the blocks whose 4-pixel tiles leave warps idle), among the projection stage's
               candidates; H200, session 17, against v17 (2 interleaved instance pairs): batch 1 0.1459 -> 0.1437
               ms, batch 2 0.1929 -> 0.1917, batch 3 0.2295 -> 0.2289; the default in sessions 17 - 18,
               v20 v19 + exdwpw6's depthwise phase by (channel group, output row, segment of DW_SEG = 4 outputs) with
               the group's 9 taps in registers, each input row of a segment read once (kernel argument dw_segs;
               bit-identical sums); H100, session 18, against v19 (2 interleaved instance pairs): batch 1 0.1487 /
               0.1489 -> 0.1498 / 0.1506 ms, batch 2 +1.6 us, batch 3 0.2343 / 0.2338 -> 0.2306 / 0.2318: slower at
               batch 1 and 2, faster at 3,
               v21 v20 with dw_segs 0 / 1 timed per block (a fourth stage of the exdwpw6 tuner, after ex_ks; untimed:
               v20's 1); H100, session 18, against v19 (2 interleaved instance pairs): batch 1 0.1496 / 0.1496 ->
               0.1494 / 0.1497 ms, batch 2 even, batch 3 0.2358 / 0.2363 -> 0.2314 / 0.2327; the default since
               session 18,
               v22 v21 + each planned exdwpw6 launch on a build of its own with the tuner's modes (proj_cols, ex_ks,
               red_pf, dw_segs) fixed at compile time (kernels/cblock.cu EXDWPW6_SPEC_ONLY, built on first use,
               ~1 s each, cached): one path per phase, about half the code; tuned on the generic builds. Session
               18 measured the effect with fixed modes (H100, batch 1: 152.98 -> 144.32 and 151.15 -> 140.59 us);
               H200, session 19: batch 1 -5.2 us against v21,
               v23 v22 with the block's shape and flags (H, W, CIN, CE, COUT, Ho, Wo, S, TR, the activations, the
               residual) fixed at compile time too (one build per block shape and modes); H200, session 19: batch 1
               / 2 / 3 -12 / -19 / -19 us against v21; the default since session 19,
               v24 v23 + the plan's exdwpw5 launches (their shape and flags: H, W, CE, Ho, Wo, pad, the activations,
               the residual), its block0 v3 launch (H, W, Ho, Wo) and its pwpool_c8 launch (HW, K, COUT, the
               activation) on builds with those fixed at compile time (kernels/conv.cu EXDWPW5_SPEC_ONLY,
               kernels/block0.cu BLOCK0_SPEC_ONLY, kernels/cblock.cu PWPOOL_SPEC_ONLY; fixed_defines); H200,
               session 19: batch 1 -2.3 us against v23; the default,
               v25 v24 + at batch 1 the 56 -> 28 exdwpw5 block (49 tiles) on clusters of 2 blocks that split its
               expanded channels, one 72-channel chunk each, the projection's partial sums added through
               distributed shared memory (EXDWPW5_SPLIT, exdwpw5_splits; on its fixed build too); H200, session
               21: batch 1 -1.1 us against v24,
               v26 v25 + at batch 1 the same split for the two 98-tile exdwpw5 blocks (112 -> 56, 56 -> 56): 196
               blocks, two per SM on 64 SMs (EXDWPW5_SPLIT); H200, session 21: batch 1 -1.0 us against v25,
               v27 v26 with the exdwpw6 launches by programmatic dependent launch (exdwpw6_pdl; unless the backend's
               pdl option says otherwise): each requests its weights while the kernel before it finishes (the
               kernel triggers its dependents after its cluster reduce). Measured slower in session 5 (H100, the
               generic builds of then); H200, session 21: batch 1 / 2 / 3 -9.8 / -12.0 / -4.7 us against v26,
               v28 v27 + the plan's exdwpw5 launches by PDL too, at batch <= EXDWPW5_PDL_MAX_BATCH (exdwpw5_pdl):
               exdwpw5 waits (griddepcontrol.wait) after requesting its weights and triggers its dependents after
               its chunk loop, block0 after its chunk loop; H200, session 21: batch 1 -2.9 us against v27 (0.1135
               ms), batch 2 +3.7 us (hence batch 1 only); the default,
               v29 v28 + fuse v12's pwpool_c8 by PDL at batch <= PWPOOL_PDL_MAX_BATCH (pwpool_pdl); H200, session
               21: batch 1 +2.3 us against v28 (as v12 against v11): selectable, not the default, not carried on,
               v30 v28 + exdwpw6's expansion also in lane tiles of 4 pixels x 8 / 12 channels (ex_ks = KS + 16 * EC,
               EC 1 - 3 channel groups per lane: each input float4 feeds 4 * EC channels) with the k slices' weight
               rows skewed in shared memory (EX_WSK floats per slice: v17's slices of one warp read one bank group,
               KS wavefronts per broadcast), among the tuner's expansion-stage candidates (ex_ec_modes); that stage
               and the depthwise one after it time every candidate on its fixed build (modes and shape fixed, as
               the plan runs it; v30's modes exist only there),
               v31 v30 + at batch <= PWPOOL_MAX_BATCH the head's pwpool_c8 and the classifier GEMV after it as one
               kernel (pwpool_fc_c8, kernels/cblock.cu; head_fc): each cluster's 64 pooled channels shared through
               distributed shared memory, their partial logits per block (1/8 of the columns each) to a workspace,
               the last of the clusters to arrive (a ticket counter per image and rank) adds them in cluster order
               + bias; one launch instead of two (where OUT % 4 != 0, shared memory or alignment: v30's two kernels);
               H200, session 23: GPU tests pass; its launch adds 9.15 us to the batch-1 graph against 9.68 for the
               two kernels (-0.5 us), no gain an e2e A/B could resolve: selectable, not the default,
               v32 v30 + the tuner's EC expansion modes (ex_ec_modes) run padded tiles (ex_ks + 64, builds ..e<EC>p):
               each channel group's pixel slots padded to a multiple of EX_PAD, so 8 consecutive lanes never wrap
               from one group's pixels to the next's (ncu, session 23: those input loads took 5.6 shared-memory
               wavefronts instead of 4); not v31's head (head_fc), so each is measured against v30 on its own; H200,
               session 23: GPU tests pass, no gain (the padding adds a warp on the c36 blocks: one scheduler runs 3),
               v33 v32 + the padded tiles' k loop fully unrolled (ex_ks + 128, builds ..e<EC>pf; ex_unroll; session
               23's stamps: the c24 blocks' expansion -0.1 us each); H200, session 24: GPU tests pass, batch-1
               prefix times -0.66 us on those blocks, no gain an e2e A/B resolves: selectable, not the default,
               v34 v30 + every tiled expansion candidate of the tuner (v17's tiles, KS >= 1, and ex_ec_modes') with
               its units in boustrophedon order (ex_ks + 256, builds ..z; ex_snake; fixed builds only): EX_SNAKE
               channel groups per run, pixel-slot major inside a run, every odd run's slots reversed, so 8
               consecutive lanes read at most 8 consecutive pixel rows (distinct bank groups) or one (a broadcast)
               instead of wrapping from one channel group's last slots to the next's first; the same units and
               sums (bit-identical), unlike v32 no extra units or warps; not v31 / v32 / v33's changes; H200,
               session 24: GPU tests pass, batch 1 / 2 -1.4 / -1.8 us against v30 (A/B, 8 instances),
               v35 v34 + the EC modes' k loop fully unrolled (ex_ks + 128 + 256, builds ..e<EC>fz; ex_unroll; session
               24's stamps: the c36 blocks' expansion 1.80 -> 1.69 us against v34's order alone); H200, session 24:
               GPU tests pass, batch 1 0.1122 / 0.1107 / 0.1097 ms for v30 / v34 / v35 (A/B, 3 instances each),
               batch 64 unchanged; the default in session 24,
               v36 v35 + the projection's lane tiles also with their units in the lane-pair order of v34's expansion
               (proj_cols 4 / 5 = 2 / 3's tiles with ex_unit's order, G = EX_SNAKE: lanes n and n ^ 1 read one Ds
               row, lanes n and n ^ 2 one weight column; fixed builds only, bit-identical): a last tuner stage times
               the final pick with proj_cols 2 / 3 / 4 / 5 on fixed builds (H200, session 25's stamps on v35's batch-1
               plan: the c36 14x14 blocks' projection 1.32 -> 1.20 us ordered, the 28x28 / stride-2 ones slower;
               the other tile height faster on the c24 14x14 blocks' final builds); H200, session 25: GPU tests
               pass, batch 1 0.1100 -> 0.1092 ms (medians of 8 interleaved instances each, v35 -> v36), batch 2
               -0.7 us (4 each, overlapping); the default,
               v37 v36 + the cluster reduce by bulk copies (red_pf 2, fixed builds only; kernels/cblock.cu
               EXDWPW6_BULK_ON): each block's Ps rows of the pixels block r sums go to r in ONE cp.async.bulk
               (shared::cta -> shared::cluster) on r's mbarrier, which r waits on instead of the release cluster
               barrier, then r adds the CL local rows in the same order (bit-identical); a last tuner stage times
               red_pf 1 / 2 per block; H200, session 26: GPU tests pass; the stamps' spans -0.4 to -0.6 us on the
               14x14 blocks (slower on the 7x7 ones), yet batch 1 / 2 0.1084 / 0.1560 ms (v36) against 0.1083 /
               0.1567 (medians of 4 interleaved instances each), and 0.1090 / 0.1090 in a second A/B (6 each),
               though one instance's prefix times read -1.4 us: no e2e gain; selectable, not the default, not carried
               on (bulk_reduce),
               v38 v36 + v31's head (head_fc: pwpool_c8 and the classifier as one kernel at batch <=
               PWPOOL_MAX_BATCH); not v37's bulk-copy reduce; H200, session 26: GPU tests pass, batch 1 0.1088 ->
               0.1086 ms (medians of 4 interleaved instances each, overlapping), batch 2 unchanged: selectable,
               not the default
               v39 v36 + exdwpw6 builds that give CE 960 (the three 7x7 blocks) one cluster per row tile
               (EXDWPW6_V39: 60 channels per block in clusters of 16, 512 threads) as tuner candidates; not v38's
               head (session 27: the batch-1 instance that planned the 14 -> 7 block on c36x16 (one cluster per
               tile) ran 1.0 us faster than the committed plan's c12 (six clusters), so the hand-off may cost more
               in the graph than the tuner's isolated timing shows),
               v40 v39 + at batch <= NG1_MAX_BATCH each exdwpw6 block's first tuner stage among the configurations
               with one cluster per row tile (no global hand-off, no last cluster's sum) where one fits in a wave;
               H200, session 27: GPU tests pass; batch 1 0.1090 (v36 replaying the committed picks) against 0.1094
               (v39) and 0.1110 ms (v40; medians of 3 interleaved instances each): c60x16 on the 7x7 blocks is
               slower (one-row tiles expand 3 input rows per output row), and v39's tuner never picks it;
               selectable, not carried on (ng1_builds),
               v41 v36 + v40's rule (one cluster per row tile first at batch <= NG1_MAX_BATCH) without v39's builds:
               the 7x7 blocks keep every candidate (none has one cluster per tile), the 14 -> 7 block (96 -> 576 ->
               160, stride 2) runs c36x16 (its blocks expand as many input rows as c12's four-row tiles, without the
               hand-off); H200, session 27: the fastest tuned v36 instance's picks, replayed, 0.1081 against the
               committed picks' 0.1089 ms, and the same picks with the committed 14 -> 7 block 0.1089,
               v42 v41 + v37's bulk-copy reduce stage (red_pf 1 / 2 timed per block; session 27: -0.3 / -0.4 us on
               replayed picks),
               v43 v42 + the flag hand-off between consecutive exdwpw6 launches (flag_handoff; impls/_custom_flags.py,
               kernels/cblock.cu EXDWPW6_FLAGS): at batch <= exdwpw6_max_batch each exdwpw6 launch after the first of
               a run polls the flags of its producer's row tiles that its input rows lie in (this forward's number,
               advanced by the last exdwpw5 launch before the run on its epoch twin: kernels/conv.cu EXDWPW5_EPOCH)
               instead of waiting for the whole previous grid (griddepcontrol.wait), and publishes its own tiles'
               flags after its stores; every flag launch writes its own output and workspace; the same builds' code
               otherwise, so the same sums (bit-identical logits); tuned as v42 (the tuner times the builds alone,
               without flags); H200, session 30: 13 us SLOWER than v42 at batch 1 (0.1211 against 0.1080 ms on the
               same picks): the release stores and the acquire polls cost more than PDL's grid wait (results/NOTES.md
               "Session 30"); selectable, not carried on,
               v44 v43 + the exdwpw5 launches in the flag hand-off (flag_upstream; kernels/conv.cu EXDWPW5_FLAGS;
               block0 v4 advances the forward's number on its epoch twin, kernels/block0.cu; a band of TH output rows
               of an exdwpw5 launch is a row tile of ceil(Wo / TW) x KS flags); H200, session 30: 15 us slower than
               v42 at batch 1 (0.1231 ms); selectable, not carried on,
               v45 v42 + at batch <= TRIGGER_MAX_BATCH each block0 v4, exdwpw5 and exdwpw6 launch on its early-trigger
               twin (trigger_early; TRIGGER_SUFFIX, PDL_TRIGGER_EARLY_DEFINES): the same build with
               griddepcontrol.launch_dependents right after its input staging instead of after its last stores, so
               that the next launch is scheduled while this one computes; session 33: CustomBackend.trigger_launches
               keeps the twins at chosen plan positions only (NOT measured yet),
               v46 v45 + at batch <= PWPOOL_PDL_MAX_BATCH pwpool_c8 by PDL after the launch before it runs on its
               exit twin (pwpool_exit; EXIT_SUFFIX, PDL_TRIGGER_EXIT_DEFINES): an exdwpw6 build with no explicit
               trigger, so pwpool_c8 is scheduled as that grid's blocks exit, after its last sums (v29's pwpool_c8 by
               PDL came while they still ran: +2.3 us); session 33; H100, session 36: batch 1 0.1131 (v42) ->
               0.1115 ms,
               v47 v46 + at batch <= TRIGGER_MAX_BATCH the exdwpw5 launches of EXDWPW5_ASYNC_BUILDS on their staged
               twins (stage_twins; STAGE_SUFFIX: the early-trigger twin with STAGE_ASYNC_DEFINES, so MBV2_STAGE=async's
               cp.async staging per build instead of for the whole process); session 37: H100 prefix times of session
               36 had async at -1.0 / -0.6 us on the first two exdwpw5 launches and +1.4 us on the third; H100,
               session 37 (its picks, 6 instances each): batch 1 0.1116 (v46) -> 0.1102 ms, ranges apart; with the
               third staged too 0.1109,
               v48 v47 + at batch <= TRIGGER_MAX_BATCH the exdwpw5 launches of EXDWPW5_PATCH_BUILDS on their patch twins
               (patch_twins; PATCH_SUFFIX: the early-trigger twin with STAGE_PATCH_DEFINES: the input patch by
               cp.async, the biases and depthwise weights by __ldg as in sync, so ptxas keeps the third exdwpw5
               launch's 152 registers); session 37; H200, session 38 (its picks, 6 instances each): batch 1
               0.1059 (v47) -> 0.1056 ms, ranges apart (under decide_bs1's 0.5 us rule: not the default),
               v49 v48 + at batch <= TRIGGER_MAX_BATCH block0 computed inside the first exdwpw5 launch (block0_fuse;
               B0FUSE_SUFFIX: the staged twin with B0FUSE_DEFINES, kernels/conv.cu EXDWPW5_B0FUSE: each block
               computes block0 v4's output on its input patch, the same sums term by term, so one launch fewer and
               no 16 x 112 x 112 tensor between them); session 38; H100, session 39 (its picks, 6 instances
               each): batch 1 0.1102 (v48) -> 0.1239 ms, 13.7 us SLOWER (the fused launch 28.8 us against 15.0
               for the two it replaces: each block recomputes block0 on its patch), so block0_fuse is v49 alone
               v50 v48 + at batch <= EXDWPW5_SPLIT_MAX_BATCH the exdwpw5 launches of EXDWPW5_RETILE's builds on
               other tilings (exdwpw5_retile): the two 98-tile blocks as 64 tiles of 7x7 on clusters of 2, one block
               per SM (128 blocks, where the 196-block grids put two blocks on 64 SMs and one on 68); the same sums in
               another tiling; session 42 (H100, the probe's PDL chains: -0.48 / -1.10 us per launch; in the plan
               graph +1.2 us: 0.1102 (v48) -> 0.1114 ms, the first launch -0.55 us, the second +2.4), so not the
               default,
               v51 v48 + v50's retiled build for the first of those launches alone, v52 for the second alone
               (EXDWPW5_RETILE_VERSIONS; alternatives to v50, not built on it); session 43 (H100, its picks, 6
               instances each): batch 1 v47 0.1101, v48 0.1099, v51 0.1094 (ranges apart from v47's), v52 0.1112
               ms; so v51 the default, v52 measured slower,
               v53 v51 + v31's head (head_fc: pwpool_c8 and the classifier GEMV as one pwpool_fc_c8 kernel at batch
               <= PWPOOL_MAX_BATCH), at batch <= PWPOOL_PDL_MAX_BATCH by PDL after v46's exit twin (pwpool_exit) as
               v51's pwpool_c8 is: one launch fewer at batch 1 (the GEMV's 3.1 us marginal in v51's plan graph, H100,
               session 43) for the fused kernel's cluster and cross-cluster hand-offs; session 44,
               v54 v51 + at batch <= PWPOOL_C10_MAX_BATCH the head's pwpool_c8 as pwpool_c10 (kernels/cblock.cu: 80
               output channels per cluster of 8, 128 blocks at COUT 1280, one per SM on 132 SMs, where pwpool_c8's 160
               put two blocks on some SMs; the same sums: bit-identical pooled channels), by PDL as v51's; session 44
               (H100, its picks, 6 instances each: batch 1 v51 0.1098, v53 0.1093 (ranges apart), v54 0.1103 ms:
               v54 measured slower),
               v55 v53 with the fused head's classifier slice requested before its griddepcontrol.wait (pwpool_fc_c8e:
               bulk copies onto an mbarrier, where pwpool_fc_c8 requests it by cp.async after the input rows, so
               during the previous kernel as v51's GEMV requested its weights); the same sums; session 44 (H100, its
               picks, 6 instances each): batch 1 v51 0.1101, v53 0.1097 (ranges apart again), v55 0.1103 ms: v55
               measured slower; v53 0.38 - 0.46 us faster than v51 in two A/Bs, under decide_bs1's 0.5 us rule, so
               v51 stays the default; session 48 (H100, the third A/B, rule >= 0.3 us with the ranges apart):
               v51 0.1095, v53 0.1093 ms, ranges overlapping, so v51 stays and the v53 lead is closed
    net        v1 one kernel per layer (the plan of ~55 launches), v2 the whole network as one persistent
               cooperative kernel walking a stage table with grid barriers (kernels/persistent.cu,
               impls/_custom_persistent.py; fp32)
    block0     v1 the network's first three convs as their own kernels (input transpose, stem, depthwise,
               projection GEMM), v2 the three as one kernel reading the NCHW input (kernels/block0.cu,
               impls/_custom_block0.py): stem tile + halo and the depthwise tile in shared memory, the
               projection in registers; only the projection's output goes to device memory,
               v3 v2 with separate stem / depthwise tiles (2 barriers per channel chunk instead of 4) and
               warp-per-row input staging, 3 blocks per SM, v4 where its grid fits one block per SM (batch 1
               at 224 on 132 SMs): v3's tile on a cluster of 2 blocks that split the stem
               channels, the projection's partial sums added through distributed shared memory (block0_v4_*);
               elsewhere v3's kernel
fp16 mode only (CustomBackend(dtype="fp16"), kernels/half.cu, impls/_custom_fp16.py):
    hgemm      v1 SIMT 16x16 tiles (any shape), v2 mma.sync m16n8k16 tensor cores + ldmatrix + cp.async ring,
               v3 v2 + epilogue staged through shared memory (16-byte coalesced stores),
               v4 autotuned per layer among v3's tiles, small-K persistent kernels (K <= 32: M-tile loop,
               next A tile prefetched) and split-K kernels (fp32 partials + deterministic reduce)
    hdepthwise v1 direct, v2 8 channels per 16-byte load, TW outputs per thread (C % 8 == 0),
               v3 8 channels x TW x TH outputs, the whole input window loaded up front (no per-row branch),
               v4 v3 with half2 arithmetic (HFMA2, half accumulators: fewer instructions and registers) where
               the grid is large (w2h2 at stride 1, w2h1 at stride 2), v3 elsewhere (batch 1)
    hstem      v1 direct (any shape), v2 3x3x3 specialised reading the fp32 NCHW input, v3 v2 with one thread
               per pixel for every output channel, v4 v3 + output staged through shared memory (coalesced
               16-byte stores) + paired loads for stride 2, v5 v3 + the stem as an op on its own (a half NHWC
               input: conv2d, the per-layer benchmark) through v3's kernel too (v1 - v4 run the direct kernel
               there: 0.71 ms at batch 64 on the H100, session 18's full run)
    hpool      v1 thread per (image, channel), fp32 sum
    hlinear    v1 GEMV (batch <= 8), hgemm with fp32 output above
    hfuse      v1 none (one kernel per layer), v2 hexdw: an expansion 1x1 conv on CIN in EXDW_CIN channels on
               tensor cores inside the 3x3 depthwise conv that reads it (the expanded tensor stays in shared
               memory; the fp16 counterpart of fuse v4); per pair autotuned at plan time against the two kernels,
               v3 v2 with the depthwise phase in half2 arithmetic (HFMA2, weights as half2 in registers, 2 outputs
               per item on stride-1 14x14 tiles, stride-2 patch stored even / odd columns apart): hexdw3 kernels,
               3 and 2 blocks per SM builds, autotuned per pair like v2,
               v4 v3 + the whole small-CIN bottleneck block (expansion + depthwise + projection + residual) in one
               kernel (hexdwpw4: the depthwise output chunk in shared memory, the projection on mma.sync accumulated
               across chunks), autotuned per block against v3's pair + the projection hgemm
    hblock0    v1 the network's first three convs as their own fp16 kernels (hstem, hdepthwise, hgemm), v2 the
               three as one kernel (kernels/block0.cu hblock0_v2_*, impls/_custom_hblock0.py): block0 v3's body
               (fp32 NCHW input, fp32 weights and math on chip) storing the projection output as half NHWC,
               v3 the stem and the projection as mma.sync GEMMs (half operands, fp32 accumulation), the depthwise
               conv in half2, 4 blocks per SM (hblock0_v3_*), v4 v3's tile in a persistent loop whose next input
               patch is fetched by cp.async during the current tile (hblock0_v4_*)
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mbv2.errors import BackendUnavailable, InputError

KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"
KERNEL_FILES = ("add", "conv", "gemm", "half", "layout", "linear", "pool", "persistent", "block0", "cblock")

KERNEL_VERSIONS: dict[str, tuple[str, ...]] = {
    "gemm": ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11"),
    "stem": ("v1", "v2", "v3"),
    "depthwise": ("v1", "v2", "v3"),
    "pool": ("v1", "v2", "v3"),
    "linear": ("v1", "v2", "v3", "v4", "v5", "v6"),
    "add": ("v1", "v2"),
    "fuse": tuple(f"v{i}" for i in range(1, 56)),
    "net": ("v1", "v2"),
    "block0": ("v1", "v2", "v3", "v4"),
    "hgemm": ("v1", "v2", "v3", "v4"),
    "hdepthwise": ("v1", "v2", "v3", "v4"),
    "hstem": ("v1", "v2", "v3", "v4", "v5"),
    "hpool": ("v1",),
    "hlinear": ("v1",),
    "hfuse": ("v1", "v2", "v3", "v4"),
    "hblock0": ("v1", "v2", "v3", "v4"),
}

# The fastest correct version of each family measured on H100 (results/NOTES.md).
DEFAULT_VERSIONS: dict[str, str] = {
    "gemm": "v11",  # = v5 below TUNE_MIN_FLOP (none by default since session 14): v8 - v11 tiles are tuner candidates
    "stem": "v3",
    "depthwise": "v3",
    "pool": "v2",
    "linear": "v5",
    "add": "v2",
    # v19: exdwpw6 blocks (tuned among the wider builds at 256 and 512 threads, then the projection mapping (lane tiles
    # of 4 or 2 pixels among them), then the expansion's k split) at batch
    # <= EXDWPW6_V13_MAX_BATCH; above: exdwpw8 / v5 blocks + exgdw on the 14x14 / 7x7 blocks; v9's head kernel at
    # batch <= PWPOOL_MAX_BATCH; v11's larger-chunk exdwpw5 builds at batch 1; v21 times each block's depthwise
    # mapping; v23 runs each planned exdwpw6 launch on a build with its modes and shape fixed at compile time (H200,
    # session 19: batch 1 / 2 / 3 -12 / -19 / -19 us against v21); v24 the exdwpw5, block0 and pwpool_c8 launches too
    # (H200, session 19: batch 1 -2.3 us, batch 8 -5.2, batch 64 -6 against v23); v25 the batch-1 56 -> 28 exdwpw5
    # block on 2-block clusters (H200, session 21: batch 1 -1.1 us against v24, that launch 7.0 -> 5.9 us); v26 the
    # two 98-tile ones too (-1.0 us); v27 the exdwpw6 launches by PDL (batch 1 / 2 / 3 -9.8 / -12 / -4.7 us against
    # v26); v28 the batch-1 exdwpw5 launches by PDL too (-2.9 us against v27): batch 1 0.1262 -> 0.1135 ms
    # v30 times the expansion's modes (v17's k splits and the wider tiles) on fixed builds (H200, session 22: batch 1
    # / 2 / 3 -0.8 / -0.6 / -1.1 us against v28); v34 the expansion's units in boustrophedon order (session 24: batch
    # 1 / 2 -1.4 / -1.8 us against v30), v35 with the EC modes unrolled (batch 1 -2.4 us against v30, -0.9 against
    # v34; batch 64 unchanged); v36 the projection tiles' order timed per block (session 25: batch 1 -0.8 us against
    # v35, medians of 8 instances); v42 = v36 + one cluster per row tile first at batch 1 (the 14 -> 7 block's hand-off
    # gone) + v37's bulk-copy reduce stage (session 27, replayed picks: -0.8 and -0.3 / -0.4 us); v46 = v42 + v45's
    # early PDL triggers + the head's pwpool_c8 by PDL after an exit twin (H100, session 36, H100 picks, 6 instances
    # each: batch 1 0.1131 -> 0.1115 ms, ranges apart; v45 0.1120); v47 = v46 + the first two exdwpw5 launches'
    # staging by cp.async (H100, session 37, H100 picks, 6 instances each: batch 1 0.1116 -> 0.1102 ms, ranges apart);
    # v51 = v48 + the first exdwpw5 launch on 7x7 tiles, one block per SM (H100, session 43, H100 picks, 6 instances
    # each: batch 1 0.1101 (v47) -> 0.1094 ms, ranges apart; the bench 0.1097 -> 0.1087)
    "fuse": "v51",
    "net": "v1",
    "block0": "v4",  # v3's kernel but at batch 1 (H200, session 20: e2e batch 1 -1.1 us against v3)
    "hgemm": "v4",
    "hdepthwise": "v4",
    "hstem": "v5",
    "hpool": "v1",
    "hlinear": "v1",
    "hfuse": "v4",
    "hblock0": "v3",
}

ENV_VAR = "MBV2_KERNELS"

# Register-blocked GEMM tile shapes: (BM, BN, TM, TN); "vec" (float4) and scalar builds exist for some.
GEMM_TILES_VEC = ((128, 128, 8, 8), (128, 64, 8, 4), (128, 32, 4, 4), (64, 64, 4, 4), (32, 32, 2, 2))
GEMM_TILES_SCALAR = ((128, 64, 8, 4), (64, 64, 4, 4), (32, 32, 2, 2))
# fuse v3 (expansion inside the depthwise conv): the input channel counts it is compiled for
EXDW_CIN = (8, 16, 24, 32)
# fuse v7 (kernels/gemm.cu exgdw): the expansion GEMM of a block with the depthwise conv in its epilogue; a block
# holds whole images, at most EXGDW_ROWS pixels (14x14: 1 image, 7x7: 4), and BN expanded channels. The compiled
# builds (autotune candidates): id -> (BN, BK, ring stages); id 64 / 32: BK 16 in 3 stages, "64k32": BK 32 in 2
EXGDW_ROWS = 196
EXGDW_VARIANTS: dict[int | str, tuple[int, int, int]] = {64: (64, 16, 3), 32: (32, 16, 3), "64k32": (64, 32, 2)}
EXGDW_THREADS = 224


def exgdw_kernel(stride: int, variant: int | str) -> str:
    bn, bk, _ = EXGDW_VARIANTS[variant]
    return f"exgdw_s{stride}_n{bn}" + ("_k32" if bk == 32 else "")


def exgdw_smem(variant: int | str) -> int:
    """Dynamic shared memory of an exgdw build: the ring of (196 x (BK + 4)) A and (BK x BN) B floats per stage,
    then the epilogue's weights (9 depthwise taps, 2 biases) x BN."""
    bn, bk, stages = EXGDW_VARIANTS[variant]
    return 4 * (stages * (EXGDW_ROWS * (bk + 4) + bk * bn) + 11 * bn)


# block0 v2 (kernels/block0.cu): the compiled (stem channels C1, projection channels C3) of the first block,
# widths 0.35-0.5, 0.75, 1.0, 1.4
BLOCK0_SHAPES = ((32, 16), (16, 8), (24, 16), (48, 24))


def block0_kernel(c1: int, c3: int, version: str = "v2") -> str:
    return f"block0_{version}_c{c1}_p{c3}"


# block0 v4's builds (kernels/block0.cu BLOCK0_V4_KERNEL lines); fuse v44: each has its epoch twin <build>EPOCH_SUFFIX
BLOCK0_V4_BUILDS = tuple(f"block0_v4_c{a}_p{b}" for a, b in BLOCK0_SHAPES) + ("block0_v4_c32_p16_k4",)


def hblock0_kernel(c1: int, c3: int, version: str = "v2") -> str:
    """hblock0 v2 (fp16 mode): block0 v3 with half NHWC output; v3: on tensor cores; compiled for BLOCK0_SHAPES."""
    return f"hblock0_{version}_c{c1}_p{c3}"


def hblock0_v3_smem(c1: int) -> int:
    """Dynamic shared memory (bytes) of hblock0_v3_c<C1>_* (kernels/block0.cu, hblock0_v3::Cfg<C1>::SMEM): the
    depthwise tile over the input patch, then the stem tile; pixel rows of KP + 8 halves (KP = C1 rounded up to 16)."""
    sp = -(-c1 // 16) * 16 + 8
    r0 = -(-max(33 * 33 * 8, 13 * 16 * sp * 2) // 16) * 16
    return r0 + 16 * 16 * sp * 2


# hblock0 v4's __launch_bounds__ minimum blocks per SM per C1 (kernels/block0.cu): the persistent grid's size factor
HBLOCK0_V4_BLOCKS_PER_SM = {16: 4, 24: 4, 32: 3, 48: 2}


def hblock0_v4_smem(c1: int) -> int:
    """hblock0_v4: v3's shared memory + the fp32 input patch of the next tile (3 x 33 x 33 floats, 16-byte rounded)."""
    return hblock0_v3_smem(c1) + 13072


# fuse v5 (exdwpw5, kernels/conv.cu): compiled (stride, CIN, COUT, TH, TW) instances: MobileNetV2-1.0's six
# small-CIN blocks; other shapes take the v4 pair + projection GEMM (recorded in the fallbacks)
EXDWPW5_INSTANCES = (
    (2, 16, 24, 4, 8),
    (1, 24, 24, 8, 8),
    (2, 24, 32, 4, 8),
    (1, 32, 32, 7, 7),
    (1, 32, 32, 8, 8),
    (2, 32, 64, 4, 8),
)
# fuse v9: smaller tiles for the two 56x56 blocks, candidates only in v9 plans (exdwpw5_tile's min_blocks): at batch
# 1 - 4 the tiles above leave SMs idle (49 blocks of t8x8, 28 of t4x8)
EXDWPW5_V9_INSTANCES = (
    (1, 24, 24, 4, 8),
    (2, 24, 32, 4, 4),
)
EXDWPW5_COMPILED = EXDWPW5_INSTANCES + EXDWPW5_V9_INSTANCES  # every tile instance (tests / force_tile5 may pin any)


# fuse v11: the three blocks v9 runs on small tiles at batch 1 take builds with larger chunks of expanded channels
# (kernels/conv.cu "_ccN": CC = N, so fewer weight stagings and barriers per block) where the grid has at most
# PER_SM blocks per SM; name -> (suffix, PER_SM). Chosen by each build alone at batch 1 / 2 on the H200 (us; results/
# NOTES.md "Session 12"): 16->96->24 t4x8 _cc48 9.81 / 12.82 vs 9.81 / 13.62 (_cc96 12.53 / 18.70); 24->144->24 t4x8
# _cc72 10.39 / 14.12 vs 10.89 / 15.19 (_cc144 14.46 / 20.64); 24->144->32 t4x4 _cc144 9.32 / 9.69 vs 10.84 / 11.15
EXDWPW5_BIG_CHUNK = {
    "exdwpw5_s2_c16_o24_t4x8": ("_cc48", 2),
    "exdwpw5_s1_c24_o24_t4x8": ("_cc72", 2),
    "exdwpw5_s2_c24_o32_t4x4": ("_cc144", 1),
}
# ... and at batch <= EXDWPW5_BIG_CHUNK_MAX_BATCH only: the e2e A/B (H200, graph) gained 3.0 us at batch 1 in two
# calls (0.1759 -> 0.1729, 0.1754 -> 0.1724 ms); at batch 2 it was inconclusive (+1 us, within the spread between
# backend instances that launch the same kernels), although each build alone was faster there too
EXDWPW5_BIG_CHUNK_MAX_BATCH = 1
# fuse v25 (session 20): at batch 1, where the tile's grid fits KS blocks per tile on the SMs, the build that splits the
# expanded channels over a cluster of KS blocks (kernels/conv.cu EXDWPW5_KERNEL_CL; its projection's partial sums are
# added through distributed shared memory). Only the 56 -> 28 block: 49 blocks at batch 1 (block0 v4 gained with the
# same step from 64 blocks, not from 128)
# fuse v26 (session 21): the same for the two 98-tile blocks at batch 1, although 2 x 98 blocks do not fit one per SM:
# their builds take two blocks per SM (MINB 2, ~61 KB of shared memory each). name -> (suffix, KS, blocks per SM the
# split grid may take, the fuse version that adds it)
EXDWPW5_SPLIT = {
    "exdwpw5_s2_c24_o32_t4x4": ("_cc72_k2", 2, 1, 25),
    "exdwpw5_s2_c16_o24_t4x8": ("_cc48_k2", 2, 2, 26),
    "exdwpw5_s1_c24_o24_t4x8": ("_cc72_k2", 2, 2, 26),
}
EXDWPW5_SPLIT_MAX_BATCH = 1
# fuse v50 (session 42): at batch <= EXDWPW5_SPLIT_MAX_BATCH each exdwpw5 cluster build of the v26 plan -> the build
# that takes its place, on its own tiling (exdwpw5_configs: TH, TW, CC, KS, blocks per SM), where its grid fits the
# build's blocks per SM. scripts/exdwpw5_tile_probe.py (session 42, H100) timed 19 tilings of the three blocks in PDL
# chains: these two were the fastest of their blocks (-0.48 / -1.10 us per launch); none beat the third's v25 build.
# In the plan graph (session 42's call 2) the first gained as in its chain (-0.55 us), the second lost 2.4 us after it
EXDWPW5_RETILE = {
    "exdwpw5_s2_c16_o24_t4x8_cc48_k2": "exdwpw5_s2_c16_o24_t7x7_cc48_k2",
    "exdwpw5_s1_c24_o24_t4x8_cc72_k2": "exdwpw5_s1_c24_o24_t7x7_cc72_k2",
}
# fuse v51 / v52 (session 43): v50's retiling of one launch alone, each an alternative to v50 (not built on it): v51 the
# first launch (the one that gained in v50's plan graph), v52 the second (after v48's first, the neighbour its chain
# did not have). Which of EXDWPW5_RETILE's builds (in plan order) each version retiles; a later version names its own.
_RETILED = tuple(EXDWPW5_RETILE)
EXDWPW5_RETILE_VERSIONS = {"v50": _RETILED, "v51": _RETILED[:1], "v52": _RETILED[1:]}
# fuse v53 - v55 (session 44) are v51 with another head: v51's retiling
EXDWPW5_RETILE_VERSIONS |= {v: _RETILED[:1] for v in ("v53", "v54", "v55")}


def exdwpw5_retile(version: str) -> dict[str, str]:
    """fuse v50 - v52: the part of EXDWPW5_RETILE (the v26 plan's exdwpw5 cluster build -> the build on another
    tiling) that the version retiles (EXDWPW5_RETILE_VERSIONS); nothing for the others."""
    return {old: EXDWPW5_RETILE[old] for old in EXDWPW5_RETILE_VERSIONS.get(version, ())}


def exdwpw5_splits(version: str) -> dict[str, tuple[str, int, int]]:
    """The EXDWPW5_SPLIT cluster builds a fuse version plans (v25 the first, v26 all): name -> (suffix, KS, blocks per
    SM)."""
    lv = fuse_level(version)
    return {name: (sfx, ks, per_sm) for name, (sfx, ks, per_sm, level) in EXDWPW5_SPLIT.items() if lv >= level}


def exdwpw6_pdl(version: str) -> bool:
    """fuse v27 and later: the exdwpw6 launches by programmatic dependent launch (where the backend's pdl option is
    unset; sm_90+ and cuLaunchKernelEx, else a fallback note and plain launches)."""
    return fuse_level(version) >= 27


# fuse v28: the plan's exdwpw5 launches by programmatic dependent launch at batch <= EXDWPW5_PDL_MAX_BATCH. H200,
# session 21 (A/B against v27, exdwpw5 by PDL at batch <= 3): batch 1 -2.9 us, batch 2 +3.7 us, batch 3 -0.9 us; hence
# batch 1 only
EXDWPW5_PDL_MAX_BATCH = 1


def exdwpw5_pdl(version: str) -> bool:
    """fuse v28 and later: the plan's exdwpw5 launches by programmatic dependent launch at batch <=
    EXDWPW5_PDL_MAX_BATCH (where the backend's pdl option is unset)."""
    return fuse_level(version) >= 28


def exdwpw5_small_tiles(version: str) -> tuple[tuple[int, int, int, int, int], ...]:
    """The small-batch exdwpw5 instances a fuse version adds to EXDWPW5_INSTANCES (v9 and v10:
    EXDWPW5_V9_INSTANCES)."""
    return EXDWPW5_V9_INSTANCES if fuse_level(version) >= 9 else ()


def exdwpw5_kernel(stride: int, cin: int, cout: int, tile: tuple[int, int]) -> str:
    return f"exdwpw5_s{stride}_c{cin}_o{cout}_t{tile[0]}x{tile[1]}"


_EXDWPW5_MACRO = re.compile(r"^EXDWPW5_KERNEL(_CL)?\((\w+),((?:\s*\d+\s*,?){10,11})\)", re.M)


def exdwpw5_configs() -> dict[str, tuple[int, ...]]:
    """Every compiled exdwpw5 build: name -> (S, CIN, COUT, TH, TW, CC, DP, PT, WS, MINB, KS), read from the
    EXDWPW5_KERNEL lines of kernels/conv.cu (the one place they are written); KS (blocks per cluster, fuse v25's
    EXDWPW5_KERNEL_CL builds) is 1 for the plain ones."""
    text = (KERNEL_DIR / "conv.cu").read_text()
    out = {}
    for m in _EXDWPW5_MACRO.finditer(text):
        vals = tuple(int(v) for v in m.group(3).split(","))
        if len(vals) != (11 if m.group(1) else 10):
            raise ValueError(f"kernels/conv.cu: {m.group(0)!r} has {len(vals)} configuration values")
        out[m.group(2)] = vals if m.group(1) else (*vals, 1)
    return out


def exdwpw5_smem(name: str, staged: bool | None = None) -> int:
    """Dynamic shared memory (bytes) of an exdwpw5 build (kernels/conv.cu: Xs | Es | Ds | weight buffers; with
    MBV2_STAGE=async (``staged`` None: the process's option), or as fuse v47's staged twin (True; fuse v48's patch twin:
    False), and staged weights also Wos [2][11 * CC] and Bps [COUT], exdwpw5_body's SA)."""
    s, cin, cout, th, tw, cc, _, _, ws, _, _ = exdwpw5_configs()[name]
    ih, iw = (th - 1) * s + 3, (tw - 1) * s + 3
    xstr = cin + 4 if ws & 2 and cin % 32 in (0, 16) else cin  # WS bit 1: padded input rows (bank conflicts)
    sa = (ws & 1) * (stage_option() == "async" if staged is None else staged) * (2 * 11 * cc + cout)
    return 4 * (ih * iw * (xstr + cc) + th * tw * (cc + 4) + (ws & 1) * 2 * (cin * cc + cc * cout) + sa)


def exdwpw5_tile(
    stride: int, cin: int, cout: int, ho: int, wo: int, nb: int = 1, min_blocks: int = 0, small: tuple = ()
) -> tuple[int, int] | None:
    """The compiled exdwpw5 tile for this block with the least padded output area (ties: the larger tile),
    None if none is compiled. With ``min_blocks`` (fuse v9+: the SM count) the ``small`` instances
    (exdwpw5_small_tiles) join the candidates and first comes the tile whose grid of ``nb`` images falls least short
    of min_blocks: at small batch the smaller tile that keeps more SMs busy."""
    best, best_key = None, None
    for s, ci, co, th, tw in EXDWPW5_INSTANCES + (small if min_blocks else ()):
        if (s, ci, co) != (stride, cin, cout):
            continue
        padded = -(-ho // th) * th * -(-wo // tw) * tw
        short = max(0, min_blocks - nb * -(-ho // th) * -(-wo // tw))
        key = (short, padded, -th * tw)
        if best_key is None or key < best_key:
            best, best_key = (th, tw), key
    return best


# fuse v8 (exdwpw8, kernels/conv.cu): exdwpw5's block with larger register tiles, 2 blocks per SM; several builds per
# block shape, autotuned against exdwpw5 and the pair (results/NOTES.md "fuse v8")
_EXDWPW8_MACRO = re.compile(r"^EXDWPW8_KERNEL\((\w+),((?:\s*\d+\s*,?){14})\)", re.M)
EXDWPW8_FIELDS = ("S", "CIN", "COUT", "TH", "TW", "CC", "EM", "EN", "DH", "DW", "PM", "PN", "KS", "MINB")


# the builds fuse v8's tuner tries per block shape (beside exdwpw5 and the pair), best first: the two fastest of each
# shape at batch 64 and 256 (H100, results/NOTES.md "fuse v8"); without the tuner (inside captures, small batches)
# the first where its grid fills the SMs at 2 blocks each. The other builds are experiments (tests, exdwpw8_time.py).
EXDWPW8_TUNED: tuple[str, ...] = (
    "exdwpw8_s2_c16_o24_c",
    "exdwpw8_s2_c16_o24_a",
    "exdwpw8_s1_c24_o24_f",
    "exdwpw8_s1_c24_o24_d",
    "exdwpw8_s2_c24_o32_a",
    "exdwpw8_s2_c24_o32_b",
    "exdwpw8_s1_c32_o32_b",
    "exdwpw8_s1_c32_o32_c",
    "exdwpw8_s2_c32_o64_c",
    "exdwpw8_s2_c32_o64_b",
)


def exdwpw8_configs() -> dict[str, dict[str, int]]:
    """Every compiled exdwpw8 build: name -> its template parameters (EXDWPW8_FIELDS), read from the
    EXDWPW8_KERNEL lines of kernels/conv.cu (the one place they are written)."""
    text = (KERNEL_DIR / "conv.cu").read_text()
    return {
        m.group(1): dict(zip(EXDWPW8_FIELDS, (int(v) for v in m.group(2).split(","))))
        for m in _EXDWPW8_MACRO.finditer(text)
    }


def exdwpw8_builds(stride: int, cin: int, cout: int, tuned: bool = False) -> list[str]:
    """The exdwpw8 builds compiled for a block of this stride and input / output channels (source order), or with
    ``tuned`` those of EXDWPW8_TUNED (its order: best first)."""
    names = [n for n, c in exdwpw8_configs().items() if (c["S"], c["CIN"], c["COUT"]) == (stride, cin, cout)]
    return [n for n in EXDWPW8_TUNED if n in names] if tuned else names


def exdwpw8_smem(name: str) -> int:
    """Dynamic shared memory (bytes) of an exdwpw8 build (kernels/conv.cu: Xs | Es | Ds | two weight buffers)."""
    c = exdwpw8_configs()[name]
    np_ = ((c["TH"] - 1) * c["S"] + 3) * ((c["TW"] - 1) * c["S"] + 3)
    cc = c["CC"]
    return 4 * (np_ * (c["CIN"] + 4 + cc) + c["TH"] * c["TW"] * (cc + 4) + 2 * cc * (c["CIN"] + c["COUT"]))


def fuse_level(version: str) -> int:
    """The fuse version's number: v3 and later each add to the one before (v2 is its own branch, below v3; v10's
    two-phase block kernel, v12's / v29's pwpool PDL and v49's block0 fusion are meant to stay out of any later
    version: two_phase, pwpool_pdl, block0_fuse)."""
    return int(version[1:])


def two_phase(version: str) -> bool:
    """fuse v10 only: exdwpw10, the two-phase cooperative block kernel (measured slower than v9's exdwpw6 on the
    H200, session 12: kept selectable, not carried into later versions)."""
    return version == "v10"


def pwpool_pdl(version: str) -> bool:
    """fuse v12 and v29 only: pwpool_c8 by programmatic dependent launch. Both measured slower at batch 1 on the H200:
    v12 by 2.7 us (session 14, the block kernels before it launched plainly), v29 by 2.3 us against v28 (session 21,
    after v27 / v28's PDL chain of block kernels). Kept selectable, not carried into later versions."""
    return version in ("v12", "v29")


def wide_clusters(version: str) -> bool:
    """fuse v13 and later: the exdwpw6 configurations include the EXDWPW6_WIDE builds, each block's is autotuned, and
    the plan runs the blocks as exdwpw6 up to EXDWPW6_V13_MAX_BATCH."""
    return fuse_level(version) >= 13


def v14_clusters(version: str) -> bool:
    """fuse v14 only: v13 + the EXDWPW6_V14 builds as tuner candidates, and on the maps above EXDWPW6_MAX_MAP (up to
    EXDWPW6_V13_MAX_BATCH) exdwpw6 timed against v5's path for the block (H200, session 16: exdwpw6 1-3 us slower
    than v5's kernels on every 56x56 block, batch 1 unchanged: kept selectable, not carried into later versions)."""
    return version == "v14"


def proj_cols(version: str) -> bool:
    """fuse v16 and later: exdwpw6's projection phase may run with lane = output channel, the block's CH weights of
    that channel in registers and each pixel's depthwise row a warp-wide broadcast (kernel argument proj_cols = 1):
    timed against the pixel-lane mapping per block, untimed on COUT >= PROJ_COLS_MIN_COUT."""
    return fuse_level(version) >= 16


# fuse v16's untimed rule (H200, session 16, stamps at batch 1: the column mapping's projection phase 3.76 -> 2.64 us
# on COUT 320, 1.81 -> 1.59 on COUT 160; 1.84 -> 2.08 on COUT 96, 0.98 -> 1.30 on COUT 32)
PROJ_COLS_MIN_COUT = 128


def ex_tiles(version: str) -> bool:
    """fuse v17 and later: exdwpw6's expansion in lane tiles of 4 pixels x 4 channels with its k range split over
    ex_ks lanes (kernel argument ex_ks 1 / 2 / 4 / 8; 0 = the pixel-lane expansion) and the projection in the same
    tiles (proj_cols 2), each timed per block."""
    return fuse_level(version) >= 17


# fuse v17: the k slices (ex_ks) the tuner's first stage and untimed plans run: the largest of EX_KS_RULE that divides
# CIN into slices of whole float4s; the candidates the last stage times
EX_KS_RULE = 4
EX_KS_CANDIDATES = (0, 1, 2, 4, 8)


def ex_ks_modes(cin: int) -> list[int]:
    """fuse v17's ex_ks values for an input of cin channels: 0 (the pixel-lane expansion) and each k split of
    EX_KS_CANDIDATES whose slices are whole float4s (cin % (4 * ks) == 0)."""
    return [ks for ks in EX_KS_CANDIDATES if ks == 0 or cin % (4 * ks) == 0]


def ex_ks_rule(cin: int) -> int:
    """fuse v17's untimed ex_ks for an input of cin channels: EX_KS_RULE or the largest power of two below it whose
    slices are whole float4s (cin % (4 * ks) == 0)."""
    ks = EX_KS_RULE
    while ks > 1 and cin % (4 * ks):
        ks //= 2
    return ks


def ex_wide(version: str) -> bool:
    """fuse v30 and later: exdwpw6's expansion stage also times ex_ec_modes' tiles of EC channel groups per lane, and
    it and the depthwise stage time every candidate on its fixed build (build_exdwpw6_spec)."""
    return fuse_level(version) >= 30


# fuse v30: the channel groups per lane (EC) of ex_ec_modes, and the skew (floats) of each k slice's weight rows in
# shared memory (kernels/cblock.cu EX_WSK)
EX_EC_CANDIDATES = (1, 2, 3)
EX_WSK = 8


# fuse v32: the padded tiles' pixel slots per channel group are a multiple of EX_PAD (kernels/cblock.cu ex_tiles_ec PAD)
EX_PAD = 8


# fuse v34: the tiled expansion's units in boustrophedon order, EX_SNAKE channel groups per run (kernels/cblock.cu
# ex_unit, EX_SNAKE_V34)
EX_SNAKE = 2


def ex_pack(ks: int, ec: int, pad: bool = False, full: bool = False, snake: bool = False) -> int:
    """fuse v30's ex_ks argument: KS + 16 * EC (EC 0: v17's tiles, or the pixel lanes with KS 0); fuse v32's padded
    tiles (EC >= 1) + 64; fuse v33's k loop fully unrolled (EC >= 1) + 128; fuse v34's units in boustrophedon order
    (KS >= 1: v17's tiles or EC's) + 256."""
    return ks + 16 * ec + 64 * int(pad) + 128 * int(full) + 256 * int(snake)


def ex_unpack(ex_ks: int) -> tuple[int, int]:
    """(KS, EC) of an ex_ks argument (ex_pack's inverse; ex_padded tells the pad)."""
    return ex_ks & 15, (ex_ks >> 4) & 3


def ex_padded(ex_ks: int) -> bool:
    """Whether ex_ks is fuse v32's padded tiles (ex_pack's pad)."""
    return bool(ex_ks & 64)


def ex_full(ex_ks: int) -> bool:
    """Whether ex_ks has fuse v33's fully unrolled k loop (ex_pack's full)."""
    return bool(ex_ks & 128)


def ex_snaked(ex_ks: int) -> bool:
    """Whether ex_ks runs fuse v34's units in boustrophedon order (ex_pack's snake)."""
    return bool(ex_ks & 256)


def ex_unroll(version: str) -> bool:
    """fuse v33, v35 and later (v34 builds on v30): the tuner's EC modes run with their k loop fully unrolled
    (fixed-shape builds: KL is a constant; v33's padded, v35's in boustrophedon order). Session 23's stamps
    (scripts/ex_variant_stamps.py, batch-1 plan, H200): the 14x14 64-wide blocks' expansion 1.34 -> 1.22 us, the 7x7
    blocks' 1.59 -> 1.46 us; padded alone 1.32 / 1.58. Session 24's, in boustrophedon order (G 2) and unrolled
    against v30's picks: the c36 blocks 2.03 -> 1.69 us (1.80 not unrolled), the 14x14 64-wide 1.32 -> 1.25, the 7x7
    1.59 -> 1.53."""
    return fuse_level(version) == 33 or fuse_level(version) >= 35


def ex_pad(version: str) -> bool:
    """fuse v32 and v33 (v34 builds on v30): the tuner's EC modes (ex_ec_modes) run the padded tiles: each channel
    group's pixel slots padded to a multiple of EX_PAD, so 8 consecutive lanes never wrap from one group's pixels to
    the next's (ncu, session 23: 5.6 shared-memory wavefronts per input load instead of 4)."""
    return 32 <= fuse_level(version) <= 33


def ex_snake(version: str) -> bool:
    """fuse v34 and later: every tiled expansion candidate of the tuner (v17's tiles, KS >= 1, and ex_ec_modes') runs
    its units in boustrophedon order (ex_pack's snake; fixed builds only): EX_SNAKE channel groups per run, pixel-slot
    major inside a run, every odd run's slots reversed, so 8 consecutive lanes read a contiguous range of at most 8
    pixel rows (distinct bank groups) instead of wrapping from one channel group's last slots to the next's first
    (ncu, session 23: 5.6 wavefronts per input load instead of 4). The same units and sums as v30's: bit-identical;
    unlike v32's padding, no more units or warps."""
    return fuse_level(version) >= 34


def ex_v17_modes(cin: int, version: str) -> list[int]:
    """The tuner's expansion candidates of v17's tiles (ex_ks_modes; fuse v34: those with KS >= 1 in boustrophedon
    order, ex_snake)."""
    snake = ex_snake(version)
    return [ex_pack(ks, 0, snake=snake and ks > 0) for ks in ex_ks_modes(cin)]


def ex_ec_modes(cin: int, ch: int, pad: bool = False, full: bool = False, snake: bool = False) -> list[int]:
    """fuse v30's extra expansion modes for an input of cin channels and CH channels per block: ex_pack(KS, EC, pad,
    full, snake) for each k split of ex_ks_modes but 0 and each EC of EX_EC_CANDIDATES dividing CH / 4 (fuse v32:
    padded; v33: and unrolled; v34: in boustrophedon order)."""
    modes = [ex_pack(ks, ec, pad, full, snake) for ec in EX_EC_CANDIDATES for ks in ex_ks_modes(cin) if ks > 0]
    return [m for m in modes if ex_mode_fits(m, ch)]


def ex_version_ec_modes(cin: int, ch: int, version: str) -> list[int]:
    """ex_ec_modes as fuse ``version``'s tuner runs them (v32 / v33 padded, v33 / v35 unrolled, v34 / v35 in
    boustrophedon order; none before v30)."""
    if not ex_wide(version):
        return []
    return ex_ec_modes(cin, ch, ex_pad(version), ex_unroll(version), ex_snake(version))


def ex_mode_ok(ex_ks: int) -> bool:
    """Whether ex_ks is a valid expansion mode: one of EX_KS_CANDIDATES, or fuse v30's ex_pack(KS >= 1, EC 1 - 3), or
    fuse v32's padded ex_pack(KS >= 1, EC 1 - 3, True) (v33: also with full), or fuse v34's snake of any of those
    with KS >= 1."""
    if ex_ks < 0 or ex_ks >= 512:
        return False
    ks, ec = ex_unpack(ex_ks)
    if (ex_padded(ex_ks) or ex_full(ex_ks)) and ec == 0:
        return False
    if ex_snaked(ex_ks) and ks == 0:
        return False
    return ks in EX_KS_CANDIDATES and (ec == 0 or (ks > 0 and ec in EX_EC_CANDIDATES))


def ex_mode_fits(ex_ks: int, ch: int) -> bool:
    """Whether expansion mode ex_ks runs on a build of CH channels per block (fuse v30's EC must divide CH / 4)."""
    ec = ex_unpack(ex_ks)[1]
    return ec == 0 or (ch // 4) % ec == 0


def red_prefetch(version: str) -> bool:
    """fuse v18 and later: exdwpw6's cluster reduce requests its epilogue's bias / residual before the cluster barrier
    and the peers' partials 8 at a time before adding them (kernel argument red_pf = 1; bit-identical sums)."""
    return fuse_level(version) >= 18


def dw_segments(version: str) -> bool:
    """fuse v20 and later: exdwpw6's depthwise phase by output-row segments with the taps in registers (kernel argument
    dw_segs = 1; bit-identical sums); v21 and later time dw_segs 0 / 1 per block (dw_seg_stage), 1 untimed."""
    return fuse_level(version) >= 20


def spec_shapes(version: str) -> bool:
    """fuse v23 and later: the fixed-mode builds also fix the block's shape and flags (kernel arguments 11 - 23)."""
    return fuse_level(version) >= 23


# fuse v23: the exdwpw6 arguments 11 - 23 a build may fix, in order (kernels/cblock.cu EXDWPW6_FIX_SHAPE)
EXDWPW6_SHAPE_ARGS = ("H", "W", "CIN", "CE", "COUT", "HO", "WO", "S", "TR", "ACTE", "ACTD", "ACTP", "RES")


def spec_modes(version: str) -> bool:
    """fuse v22 and later: each planned exdwpw6 launch runs a build of its own with its modes fixed at compile time
    (build_exdwpw6_spec; the tuner times the generic builds)."""
    return fuse_level(version) >= 22


_EXDWPW6_NAME = re.compile(r"exdwpw6_c(\d+)(?:x(\d+))?(?:_t(\d+))?")


def exdwpw6_build_of(name: str) -> tuple[int, int, int]:
    """(CH, CL, NT) of a generic exdwpw6 build's name (exdwpw6_kernel's inverse)."""
    m = _EXDWPW6_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"not an exdwpw6 build: {name!r}")
    return int(m[1]), int(m[2] or 8), int(m[3] or 256)


def exdwpw6_spec_name(name: str, modes: tuple[int, int, int, int], shape: tuple[int, ...] | None = None) -> str:
    """fuse v22: the name of build ``name`` with modes (proj_cols, ex_ks, red_pf, dw_segs) fixed at compile time:
    <name>_m<p><k><r><d> (fuse v36's p 4 / 5: the ordered projection tiles; v37's r 2: the bulk-copy reduce; fuse
    v30's ex_ks = ex_pack(k, ec) with ec > 0: <name>_m<p><k><r><d>e<ec>; fuse v32's padded tiles: ..e<ec>p; v33's
    unrolled: ..e<ec>pf; v34's boustrophedon order: ..z); fuse v23 with the shape (EXDWPW6_SHAPE_ARGS' values)
    fixed too:
    <name>_m<p><k><r><d>_s<H>x<W>_<CIN>_<CE>_<COUT>_<Ho>x<Wo>_<S>_<TR>_<acte><actd><actp><res>."""
    pc, ks, rpf, ds = modes
    if not (pc in (0, 1, 2, 3, *PROJ_FIXED_ONLY) and ex_mode_ok(ks) and rpf in (0, 1, 2) and ds in (0, 1)):
        raise ValueError(f"exdwpw6 modes out of range: {modes}")
    k, ec = ex_unpack(ks)
    out = f"{name}_m{pc}{k}{rpf}{ds}" + (f"e{ec}" if ec else "") + ("p" if ex_padded(ks) else "")
    out += ("f" if ex_full(ks) else "") + ("z" if ex_snaked(ks) else "")
    if shape is not None:
        if len(shape) != len(EXDWPW6_SHAPE_ARGS) or min(shape[:9]) < 1 or not set(shape[9:]) <= {0, 1}:
            raise ValueError(f"exdwpw6 shape out of range: {shape}")
        h, w, cin, ce, cout, ho, wo, s, tr, ae, ad, ap, res = shape
        out += f"_s{h}x{w}_{cin}_{ce}_{cout}_{ho}x{wo}_{s}_{tr}_{ae}{ad}{ap}{res}"
    return out


_SPEC_SUFFIX = re.compile(
    r"_m(\d)(\d)(\d)(\d)(?:e(\d)(p)?(f)?)?(z)?(?:_s(\d+)x(\d+)_(\d+)_(\d+)_(\d+)_(\d+)x(\d+)_(\d+)_(\d+)_([01])([01])([01])([01]))?$"
)


def exdwpw6_spec_parse(name: str) -> tuple[str, tuple[int, ...] | None, tuple[int, ...] | None]:
    """exdwpw6_spec_name's inverse: (the generic build, its modes, its shape) of a fixed build's name; (name, None,
    None) for a name without the suffix."""
    m = _SPEC_SUFFIX.search(name)
    if m is None:
        return name, None, None
    g = m.groups()
    pc, k, rpf, ds = (int(v) for v in g[:4])
    modes = (pc, ex_pack(k, int(g[4] or 0), g[5] is not None, g[6] is not None, g[7] is not None), rpf, ds)
    shape = tuple(int(v) for v in g[8:] if v is not None)
    return name[: m.start()], modes, (shape or None)


# the flag hand-off (session 28's measuring builds, fuse v43's plan): the extra -D options of an exdwpw6 fixed build's
# flag twin (kernels/cblock.cu EXDWPW6_FLAGS; build_exdwpw6_spec(flags=True): five more arguments) and of an exdwpw5
# fixed build's epoch twin (kernels/conv.cu EXDWPW5_EPOCH; build_fixed(epoch=True): one more), and the suffixes of
# their kernel names (the twins keep the build's name + the suffix, so both live side by side in one plan)
EXDWPW6_FLAG_DEFINES = ("-DEXDWPW6_FLAGS=1",)
EXDWPW5_EPOCH_DEFINES = ("-DEXDWPW5_EPOCH=1",)
EXDWPW5_FLAG_DEFINES = ("-DEXDWPW5_FLAGS=1",)  # fuse v44: an exdwpw5 fixed build's flag twin (kernels/conv.cu)
FLAG_SUFFIX = "_hf"
EPOCH_SUFFIX = "_ep"


# session 30's measuring variants of the exdwpw6 flag twins (kernels/cblock.cu EXDWPW6_FLAG_POLL / _TRIGGER /
# _GRIDWAIT): -D options from the environment, read by the backend when it is made and passed as build_exdwpw6_spec's
# ``extra`` to the flag twins it compiles; never set by a plan (info() shows them: the twins keep their names)
FLAG_EXTRA_ENV = "MBV2_FLAG_EXTRA"
_FLAG_EXTRA = re.compile(r"-DEXDWPW6_FLAG_(POLL|TRIGGER|GRIDWAIT)=\d")


CARVEOUT_ENV = "MBV2_CARVEOUT"


def carveout_option() -> int | None:
    """MBV2_CARVEOUT (session 31): the shared-memory carveout every kernel of the backend is given
    (CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, percent of the SM's unified L1 / shared memory given to
    shared memory; 100 = the most shared memory, 0 = the most L1), or None (unset or empty: the driver's default, no
    preference). A hint: the driver still gives a kernel the shared memory it needs. A function attribute, so it holds
    for the whole process (CustomBackend refuses a second value in one process)."""
    raw = os.environ.get(CARVEOUT_ENV, "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"\d{1,3}", raw) or int(raw) > 100:
        raise InputError(f"{CARVEOUT_ENV}={raw!r}: expected a percentage 0 - 100 (100: most shared memory), or unset")
    return int(raw)


PDL_TRIGGER_ENV = "MBV2_PDL_TRIGGER"
PDL_TRIGGER_FILES = ("block0", "conv", "cblock")  # the files whose PDL kernels take PDL_TRIGGER_EARLY
PDL_TRIGGER_EARLY_DEFINES = ("-DPDL_TRIGGER_EARLY=1",)
PDL_TRIGGER_EXIT_DEFINES = ("-DPDL_TRIGGER_AT_EXIT=1",)  # fuse v46's exit twins (kernels/cblock.cu exdwpw6 only)


def pdl_trigger_option() -> str:
    """MBV2_PDL_TRIGGER (session 31, a measuring option): "end" (unset or empty: as planned since fuse v28, each PDL
    kernel of PDL_TRIGGER_FILES triggers its dependents after its last stores) or "early" (once its input is staged:
    -DPDL_TRIGGER_EARLY=1, builds cached under other keys). It changes how every build of those files is compiled, so
    it holds for the whole process (CustomBackend refuses a second value)."""
    return two_value_option(PDL_TRIGGER_ENV, "end", "early")


def two_value_option(env: str, default: str, other: str) -> str:
    """A process-wide measuring option of two values (MBV2_PDL_TRIGGER, MBV2_STAGE): environment variable ``env``
    stripped, ``default`` where unset or empty; anything but the two values is an InputError that names them."""
    raw = os.environ.get(env, "").strip()
    if raw in ("", default, other):
        return raw or default
    raise InputError(f"{env}={raw!r}: expected {default} (the default) or {other}")


def pdl_trigger_defines(file: str) -> list[str]:
    """The -D options MBV2_PDL_TRIGGER adds to every build of kernel file ``file`` (its stem)."""
    return list(PDL_TRIGGER_EARLY_DEFINES) if file in PDL_TRIGGER_FILES and pdl_trigger_option() == "early" else []


STAGE_ENV = "MBV2_STAGE"
STAGE_FILES = ("block0", "conv")  # the files whose staging loops take STAGE_ASYNC
STAGE_ASYNC_DEFINES = ("-DSTAGE_ASYNC=1",)


def stage_option() -> str:
    """MBV2_STAGE (session 33, a measuring option): "sync" (unset or empty: as before) or "async" (-DSTAGE_ASYNC=1 on
    every build of STAGE_FILES: exdwpw5 stages its input patch, block0 v3 / v4 its weights, by cp.async, all requested
    at once, instead of loops whose loads wait for each other, 2 - 4 L2 round trips in a row per thread at batch 1;
    the same values, so the same sums). Like MBV2_PDL_TRIGGER it holds for the whole process."""
    return two_value_option(STAGE_ENV, "sync", "async")


L2_PERSIST_ENV = "MBV2_L2_PERSIST"
# session 40: the launches whose weight array (argument 1) MBV2_L2_PERSIST=head marks persisting in the L2, and the L2
# set-aside it asks for (cudaLimitPersistingL2CacheSize, at most the device's persistingL2CacheMaxSize); session 45:
# the fused heads of fuse v53 / v55 (head_fc) too, over their conv weights (the classifier's are their argument 4)
L2_PERSIST_HEAD = ("pwpool_c8", "pwpool_c10", "linear_gemv_v5", "linear_gemv_v6", "pwpool_fc_c8", "pwpool_fc_c8e")
L2_PERSIST_BYTES = 8 << 20


def l2_persist_option() -> str:
    """MBV2_L2_PERSIST (session 40, a measuring option): "off" (unset or empty) or "head": the batch-1 head's launches
    (L2_PERSIST_HEAD: under fuse v51 the two programmatic-dependent ones, pwpool_c8 and the classifier GEMV; under
    v53 / v55 the one fused head, pwpool_fc_c8 / pwpool_fc_c8e, over its conv weights) carry an L2 access-policy
    window over their weight array (CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW, hits persisting, misses streaming), with
    L2_PERSIST_BYTES of the L2 set aside for persisting lines. Why: Nsight Compute without cache flushes (session 40,
    call 3) reads those two weight arrays (5.1 + 1.6 MB) from DRAM on every warm replay of the batch-1 graph, the rest
    of the weights from the L2. The set-aside is a limit of the process's CUDA context, so the option holds for the
    whole process (CustomBackend refuses a second value)."""
    return two_value_option(L2_PERSIST_ENV, "off", "head")


B0SPLIT_ENV = "MBV2_B0SPLIT"
B0SPLIT_DEFINES = ("-DEXDWPW5_B0SPLIT=1",)


def b0split_option() -> str:
    """MBV2_B0SPLIT (session 38, a measuring option): "0" (unset or empty: as built) or "1" (-DEXDWPW5_B0SPLIT=1 on
    every kernels/conv.cu build: fuse v49's b0fuse twin splits block0's patch between the two blocks of its cluster,
    each computing half its rows and storing them into both blocks' input patch through distributed shared memory,
    instead of both computing all of it; the same sums). Holds for the whole process, like MBV2_STAGE."""
    return two_value_option(B0SPLIT_ENV, "0", "1")


TICKET_ENV = "MBV2_TICKET"
TICKET_SC_DEFINES = ("-DCBLOCK_TICKET_ACQ_REL=0",)


def ticket_option() -> str:
    """MBV2_TICKET (session 49, a measuring option): "acq_rel" (unset or empty: as built, kernels/cblock.cu's
    CBLOCK_TICKET_ACQ_REL 1: the cross-cluster ticket of last_to_arrive as one atom.acq_rel.gpu) or "sc"
    (-DCBLOCK_TICKET_ACQ_REL=0 on every kernels/cblock.cu build: __threadfence() before the atomic and after the last
    arriver's reset, as up to session 48; the same sums). scripts/handoff_probe.py's ticket_sc / ticket_ar priced the
    two, and session 49's A/B measured acq_rel 0.8 us faster at batch 1 (the three 7x7 exdwpw6 launches, NG > 1; the
    fused heads also take the ticket). Holds for the whole process, like MBV2_STAGE."""
    return two_value_option(TICKET_ENV, "acq_rel", "sc")


def process_defines(file: str) -> list[str]:
    """The -D options the process-wide measuring options add to every build of kernel file ``file``: MBV2_PDL_TRIGGER's
    (pdl_trigger_defines), then MBV2_STAGE's, then MBV2_B0SPLIT's, then MBV2_TICKET's."""
    stage = list(STAGE_ASYNC_DEFINES) if file in STAGE_FILES and stage_option() == "async" else []
    split = list(B0SPLIT_DEFINES) if file == "conv" and b0split_option() == "1" else []
    ticket = list(TICKET_SC_DEFINES) if file == "cblock" and ticket_option() == "sc" else []
    return pdl_trigger_defines(file) + stage + split + ticket


def _with_defines(defines: list[str], extra: tuple[str, ...] | list[str]) -> list[str]:
    """``defines`` without those of ``extra``, then ``extra``: an early-trigger twin built in a process that runs
    MBV2_PDL_TRIGGER=early has the define once and in the same place, so the same options and cache key as in any
    other process."""
    return [d for d in defines if d not in extra] + list(extra)


def flag_extra_defines() -> tuple[str, ...]:
    """The measuring -D options in MBV2_FLAG_EXTRA (space-separated), checked: only the flag twins' variants."""
    opts = tuple(os.environ.get(FLAG_EXTRA_ENV, "").split())
    bad = [o for o in opts if not _FLAG_EXTRA.fullmatch(o)]
    if bad:
        raise ValueError(f"{FLAG_EXTRA_ENV}: {bad} (wanted -DEXDWPW6_FLAG_POLL=<n>, _TRIGGER=<n> or _GRIDWAIT=<n>)")
    return opts


def twin_parse(name: str) -> tuple[str, str | None]:
    """(the build a twin's name is of: FLAG_SUFFIX / EPOCH_SUFFIX / TRIGGER_SUFFIX / EXIT_SUFFIX / STAGE_SUFFIX /
    PATCH_SUFFIX / B0FUSE_SUFFIX), or (name, None) for any other name: an exdwpw6 build with its shape fixed +
    FLAG_SUFFIX, or an exdwpw5 fixed build + EPOCH_SUFFIX or (fuse v44) FLAG_SUFFIX, or (fuse v44) a block0 v4 build +
    EPOCH_SUFFIX (kernels/block0.cu: in the file's own build), or (fuse v45) any of trigger_twin_kind's builds +
    TRIGGER_SUFFIX, or (fuse v46) an exdwpw6 build with its shape fixed + EXIT_SUFFIX, or (fuse v47 / v48 / v49) an
    exdwpw5 fixed build + STAGE_SUFFIX / PATCH_SUFFIX / B0FUSE_SUFFIX."""
    base = name[: -len(FLAG_SUFFIX)]
    if name.endswith(FLAG_SUFFIX) and (exdwpw6_spec_parse(base)[2] is not None or _exdwpw5_fixed(base)):
        return base, FLAG_SUFFIX
    base = name[: -len(EPOCH_SUFFIX)]
    if name.endswith(EPOCH_SUFFIX) and (_exdwpw5_fixed(base) or base in BLOCK0_V4_BUILDS):
        return base, EPOCH_SUFFIX
    base = name[: -len(TRIGGER_SUFFIX)]
    if name.endswith(TRIGGER_SUFFIX) and trigger_twin_kind(base) is not None:  # fuse v45
        return base, TRIGGER_SUFFIX
    base = name[: -len(EXIT_SUFFIX)]
    if name.endswith(EXIT_SUFFIX) and exdwpw6_spec_parse(base)[2] is not None:  # fuse v46
        return base, EXIT_SUFFIX
    for suffix in (STAGE_SUFFIX, PATCH_SUFFIX, B0FUSE_SUFFIX):  # fuse v47 / v48 / v49
        base = name[: -len(suffix)]
        if name.endswith(suffix) and _exdwpw5_fixed(base):
            return base, suffix
    return name, None


def _exdwpw5_fixed(name: str) -> bool:
    generic, shape = fixed_parse(name)
    return shape is not None and fixed_kind(generic) == "exdwpw5"


def _renamed(defines: list[str], prefix: str, name: str, extra: tuple[str, ...]) -> list[str]:
    """A fixed build's -D options for its twin ``name``: its <prefix>_SPEC_NAME replaced, ``extra`` added once
    (_with_defines: fuse v45's early define is already there in a process that runs MBV2_PDL_TRIGGER=early)."""
    keep = [d for d in defines if not d.startswith(f"-D{prefix}_SPEC_NAME=")]
    return _with_defines(keep, extra) + [f"-D{prefix}_SPEC_NAME={name}"]


def exdwpw6_spec_defines(
    name: str, modes: tuple[int, int, int, int], shape: tuple[int, ...] | None = None
) -> list[str]:
    """The -D options that make kernels/cblock.cu hold only build ``name`` with ``modes`` (and ``shape``) fixed."""
    ch, cl, nt = exdwpw6_build_of(name)
    pc, ks, rpf, ds = modes
    out = ["-DEXDWPW6_SPEC_ONLY", "-DEXDWPW6_FIX_MODES", f"-DEXDWPW6_PC={pc}", f"-DEXDWPW6_KS={ks}",
           f"-DEXDWPW6_RPF={rpf}", f"-DEXDWPW6_DS={ds}", f"-DEXDWPW6_SPEC_NAME={exdwpw6_spec_name(name, modes, shape)}",
           f"-DEXDWPW6_SPEC_CH={ch}", f"-DEXDWPW6_SPEC_CL={cl}", f"-DEXDWPW6_SPEC_NT={nt}"]  # fmt: skip
    if shape is not None:
        out += ["-DEXDWPW6_FIX_SHAPE", *(f"-DEXDWPW6_{k}={v}" for k, v in zip(EXDWPW6_SHAPE_ARGS, shape))]
    return out


# fuse v24: the launches of other kernel families that the plan moves to builds with their shape fixed at compile time:
# kind -> (kernel file, the macro prefix of its defines, the index of the first fixed kernel argument, the fixed
# arguments' define names in order, the generic build's configuration's define names in order (exdwpw5_configs /
# block0_configs)). block0 keeps its activations as arguments: fixed too, ptxas spilled 8 bytes at 80 registers.
FIXED_KINDS: dict[str, tuple[str, str, int, tuple[str, ...], tuple[str, ...]]] = {
    "exdwpw5": ("conv", "EXDWPW5", 9, ("H", "W", "CE", "HO", "WO", "PAD", "ACTE", "ACTD", "ACTP", "RES"),
                ("S", "CIN", "COUT", "TH", "TW", "CC", "DP", "PT", "WS", "MINB", "KS")),
    "block0": ("block0", "BLOCK0", 8, ("H", "W", "HO", "WO"), ("C1", "C3", "CC", "MINB")),
    "pwpool": ("cblock", "PWPOOL", 4, ("HW", "K", "COUT", "ACT"), ()),
    "pwpool_fc": ("cblock", "PWPOOL", 9, ("HW", "K", "COUT", "OUT", "ACT"), ("FC",)),  # fuse v31: PWPOOL_SPEC_CFG_FC
    "pwpool_c10": ("cblock", "PWPOOL", 4, ("HW", "K", "COUT", "ACT"), ("C10",)),  # fuse v54: PWPOOL_SPEC_CFG_C10
}  # fmt: skip


def fixed_shapes(version: str) -> bool:
    """fuse v24 and later: the plan's exdwpw5, block0 v3 and pwpool_c8 launches run on builds with their shape fixed
    (build_fixed)."""
    return fuse_level(version) >= 24


_BLOCK0_V3_MACRO = re.compile(r"^BLOCK0_V3_KERNEL\((\w+),((?:\s*\d+\s*,?){4})\)", re.M)


def block0_configs() -> dict[str, tuple[int, ...]]:
    """Every compiled block0 v3 build: name -> (C1, C3, CC, MINB), read from kernels/block0.cu's BLOCK0_V3_KERNEL
    lines."""
    text = (KERNEL_DIR / "block0.cu").read_text()
    return {m.group(1): tuple(int(v) for v in m.group(2).split(",")) for m in _BLOCK0_V3_MACRO.finditer(text)}


def fixed_kind(name: str) -> str | None:
    """The FIXED_KINDS kind of a generic build fuse v24 can fix (None for any other kernel)."""
    if name in exdwpw5_configs():
        return "exdwpw5"
    if name in block0_configs():
        return "block0"
    if name == "pwpool_c8":
        return "pwpool"
    if name in ("pwpool_fc_c8", "pwpool_fc_c8e"):
        return "pwpool_fc"
    if name == "pwpool_c10":
        return "pwpool_c10"
    return None


def fixed_config(name: str) -> tuple[int, ...]:
    """The configuration (FIXED_KINDS' last names, in order) of a generic build fuse v24 fixes."""
    kind = fixed_kind(name)
    if kind == "exdwpw5":
        return exdwpw5_configs()[name]
    if kind == "block0":
        return block0_configs()[name]
    if kind == "pwpool":
        return ()
    if kind == "pwpool_fc":  # -DPWPOOL_SPEC_CFG_FC=1 / 2: the file's fixed build is pwpool_fc_c8 / v55's pwpool_fc_c8e
        return (2,) if name == "pwpool_fc_c8e" else (1,)
    if kind == "pwpool_c10":
        return (1,)  # -DPWPOOL_SPEC_CFG_C10=1: the file's fixed build is pwpool_c10
    raise ValueError(f"not a build fuse v24 fixes: {name!r}")


_FIXED_SUFFIX = re.compile(r"_f(\d+(?:_\d+)*)$")


def fixed_name(name: str, shape: tuple[int, ...]) -> str:
    """fuse v24: the name of build ``name`` with its shape (FIXED_KINDS' arguments, in order) fixed at compile time:
    <name>_f<v1>_<v2>_..."""
    kind = fixed_kind(name)
    if kind is None:
        raise ValueError(f"not a build fuse v24 fixes: {name!r}")
    names = FIXED_KINDS[kind][3]
    if len(shape) != len(names) or min(shape) < 0 or min(shape[: min(5, len(names))]) < 1:
        raise ValueError(f"{kind} shape out of range: {shape} (wanted {', '.join(names)})")
    return f"{name}_f" + "_".join(str(int(v)) for v in shape)


def fixed_parse(name: str) -> tuple[str, tuple[int, ...] | None]:
    """fixed_name's inverse: (the generic build, its shape), or (name, None) for a name without the suffix (or whose
    "_f<digits>" ending is its own, e.g. hgemm_v2_64x64_f32: the base must be a build fuse v24 fixes)."""
    m = _FIXED_SUFFIX.search(name)
    if m is None or fixed_kind(name[: m.start()]) is None:
        return name, None
    return name[: m.start()], tuple(int(v) for v in m[1].split("_"))


def trigger_base(name: str) -> str:
    """The build that an early-trigger or exit twin's name is of (fuse v45 / v46: the same arguments and sums, only the
    place of the PDL trigger differs; scripts/cblock_sweep.py and tr_stamps.py stamp a twin's launch on it); any other
    name as it is."""
    base, twin = twin_parse(name)
    return base if twin in (TRIGGER_SUFFIX, EXIT_SUFFIX) else name


def generic_of(name: str) -> str:
    """The generic build a planned kernel name runs (fuse v22 / v23's exdwpw6 and v24's fixed builds stripped of
    their suffix; any other name as it is)."""
    return fixed_parse(exdwpw6_spec_parse(twin_parse(name)[0])[0])[0]


def fixed_defines(name: str, shape: tuple[int, ...]) -> list[str]:
    """The -D options that make the kind's kernel file hold only build ``name`` with ``shape`` fixed."""
    spec = fixed_name(name, shape)
    kind = fixed_kind(name)
    assert kind is not None
    _, pre, _, names, cfg_names = FIXED_KINDS[kind]
    cfg = fixed_config(name)
    out = [f"-D{pre}_SPEC_ONLY", f"-D{pre}_FIX_SHAPE", f"-D{pre}_SPEC_NAME={spec}"]
    out += [f"-D{pre}_SPEC_CFG_{k}={v}" for k, v in zip(cfg_names, cfg)]
    return out + [f"-D{pre}_{k}={int(v)}" for k, v in zip(names, shape)]


def dw_seg_stage(version: str) -> bool:
    """fuse v21 and later: the exdwpw6 tuner's fourth stage times the picked configuration with dw_segs 0 and 1 (H100,
    session 18: v20's segments 1.5 us slower than v19 at batch 1, 3 us faster at batch 3, summed over the blocks)."""
    return fuse_level(version) >= 21


def bulk_reduce(version: str) -> bool:
    """fuse v37 and v42 on: after the projection-order stage the exdwpw6 tuner times the final pick with red_pf 1 and 2
    (2: the cluster reduce by bulk copies on mbarriers, fixed builds only, its receive buffer exdwpw6_bulkred_bytes
    after the layout). H200, session 26: no e2e gain at batch 1 / 2 against v36, so not carried into v38 - v41;
    session 27, on replayed picks: -0.3 / -0.4 us at batch 1, so v42 carries it."""
    return fuse_level(version) == 37 or fuse_level(version) >= 42


def proj_order(version: str) -> bool:
    """fuse v36 and later: after the depthwise stage the exdwpw6 tuner times the final pick (if it runs the lane tiles,
    proj_cols 2 / 3) with proj_cols 2, 3, 4 and 5 on fixed builds (PROJ_ORDER_MODES: 4 / 5 are 2 / 3's tiles with
    their units in the lane-pair order, fixed builds only)."""
    return fuse_level(version) >= 36


# fuse v36: the projection modes of the last tuner stage (2 / 3: v17 / v19's lane tiles; 4 / 5: the same in the
# lane-pair order, kernels/cblock.cu proj_tiles<.., EX_SNAKE_V34>) and those only fixed builds run
PROJ_ORDER_MODES = (2, 3, 4, 5)
PROJ_FIXED_ONLY = (4, 5)


def proj_modes(version: str) -> tuple[int, ...]:
    """The proj_cols values a fuse version runs / times: 0 (pixel lanes), v16 + 1 (columns), v17 + 2 (4-pixel lane
    tiles), v19 + 3 (2-pixel lane tiles)."""
    return tuple(m for m, level in ((0, 0), (1, 16), (2, 17), (3, 19)) if fuse_level(version) >= level)


def ng1_builds(version: str) -> bool:
    """fuse v39 and v40: the exdwpw6 tuner's candidates include the EXDWPW6_V39 builds (512 threads only), which
    give CE 960 one cluster per row tile (H200, session 27: slower on the 7x7 blocks, not carried into v41)."""
    return fuse_level(version) in (39, 40)


def ng1_first(version: str) -> bool:
    """fuse v40 and later: at batch <= NG1_MAX_BATCH the exdwpw6 tuner's first stage times only the configurations
    with one cluster per row tile (NG 1), where any runs in one wave."""
    return fuse_level(version) >= 40


def flag_handoff(version: str) -> bool:
    """fuse v43 and v44 only: the plan's runs of consecutive exdwpw6 launches hand off through per-tile flags
    (impls/_custom_flags.py plan_flags) instead of the grid-wide griddepcontrol.wait, at batch <= exdwpw6_max_batch.
    H200, session 30: 13 us slower at batch 1 than v42's grid waits, so no later version carries it (v45 is v42's)."""
    return fuse_level(version) in (43, 44)


def flag_upstream(version: str) -> bool:
    """fuse v44 only: the exdwpw5 launches join the flag hand-off's runs (the exdwpw5 -> exdwpw5 and exdwpw5 ->
    exdwpw6 hand-offs go by flags too); block0 v4 advances the forward's number (batch 1), elsewhere the first exdwpw5
    launch does and stays out of the run (impls/_custom_flags.py handoff_runs)."""
    return fuse_level(version) == 44


# fuse v45 (session 32): at batch <= TRIGGER_MAX_BATCH every block0 v4, exdwpw5 and exdwpw6 launch of the plan runs on
# its early-trigger twin: the same build compiled with PDL_TRIGGER_EARLY (kernels/block0.cu, conv.cu, cblock.cu:
# griddepcontrol.launch_dependents right after the input staging instead of after the last stores), named <build> +
# TRIGGER_SUFFIX. Session 31's MBV2_PDL_TRIGGER=early does the same to every build of the process; v45 makes it a plan
# that sits beside v42 in one process. Batch 1 only: there every launch of the plan is one wave (an early dependent
# can only take an SM the running grid does not use); at larger batches the grids run several waves, where session 8
# measured a trigger at entry 19.5 us slower.
TRIGGER_SUFFIX = "_te"
TRIGGER_MAX_BATCH = 1
# fuse v46 (session 33): the exit twin of the exdwpw6 launch before pwpool_c8 (no explicit trigger: PDL_TRIGGER_AT_EXIT)
EXIT_SUFFIX = "_tx"


# fuse v47 (session 37): an exdwpw5 fixed build's staged twin, its early-trigger twin with STAGE_ASYNC_DEFINES too
# (kernels/conv.cu EXDWPW5_ASYNC: the input patch, and with staged weights the biases and depthwise weights, by
# cp.async, all requested at once; the same values, so the same sums), for the exdwpw5 builds of EXDWPW5_ASYNC_BUILDS.
# MBV2_STAGE=async does it to every build of the process; on the H100 (session 36, results/h100/session36/
# prefix_compare.md: each launch's time in the batch-1 graph, async - sync) the first two exdwpw5 launches of the
# committed picks gained (-1.02 / -0.64 us) and the third lost (+1.42 us: exdwpw5_s2_c24_o32_t4x4_cc72_k2, whose
# async build ptxas gives 90 registers against 152), so v47 stages these two builds only (the H200's picks name the
# same three builds).
STAGE_SUFFIX = "_ta"
# fuse v50: the builds that take the first two's place (EXDWPW5_RETILE) are staged as they were
EXDWPW5_ASYNC_BUILDS = frozenset({"exdwpw5_s2_c16_o24_t4x8_cc48_k2", "exdwpw5_s1_c24_o24_t4x8_cc72_k2",
                                  "exdwpw5_s2_c16_o24_t7x7_cc48_k2", "exdwpw5_s1_c24_o24_t7x7_cc72_k2"})  # fmt: skip


# fuse v48 (session 37): an exdwpw5 fixed build's patch twin, its early-trigger twin with STAGE_PATCH_DEFINES (the
# input patch by cp.async only; kernels/conv.cu STAGE_ASYNC 2), for the builds of EXDWPW5_PATCH_BUILDS: the third
# exdwpw5 launch of the committed batch-1 picks, which lost 0.7 us staged whole in session 37's A/B (v47 stage=1+2+3)
# and whose staged build ptxas gives 90 registers against 152 (its patch twin: 152)
PATCH_SUFFIX = "_tp"
STAGE_PATCH_DEFINES = ("-DSTAGE_ASYNC=2",)
EXDWPW5_PATCH_BUILDS = frozenset({"exdwpw5_s2_c24_o32_t4x4_cc72_k2"})


# fuse v49 (session 38; measured slower in session 39, results/NOTES.md): block0 inside the first exdwpw5 launch. The
# exdwpw5 fixed builds of B0FUSE_BUILDS have a b0fuse twin (B0FUSE_SUFFIX): the staged twin with B0FUSE_DEFINES
# (kernels/conv.cu EXDWPW5_B0FUSE), which takes block0 v4's arguments too and computes its output on each block's
# input patch instead of reading it (exdwpw5_b0_smem: more shared memory). At batch <= TRIGGER_MAX_BATCH, where the
# plan starts with a launch of B0FUSE_BLOCK0 (or its early-trigger twin) and then one of these builds, the two become
# that one launch.
B0FUSE_SUFFIX = "_tb"
B0FUSE_DEFINES = ("-DEXDWPW5_B0FUSE=1",)
B0FUSE_BUILDS = frozenset({"exdwpw5_s2_c16_o24_t4x8_cc48_k2"})
B0FUSE_BLOCK0 = "block0_v4_c32_p16"


def block0_fuse(version: str) -> bool:
    """fuse v49 alone: at batch <= TRIGGER_MAX_BATCH block0 inside the first exdwpw5 launch (B0FUSE_SUFFIX). Measured
    13.7 us slower than v48 at batch 1 on the H100 (session 39), so a later version builds on v48, not on this."""
    return fuse_level(version) == 49


def exdwpw5_b0_smem(name: str) -> int:
    """Dynamic shared memory (bytes) of an exdwpw5 build's b0fuse twin (fuse v49): its staged twin's, 16-byte
    aligned, + kernels/conv.cu exdwpw5_b0's R1 (the image patch or the depthwise tile of block0's 32 channels on the
    input patch, whichever is larger) and block0's weights (27 x 32 + 32 + 9 x 32 + 32 + 32 x 16 + 16 floats)."""
    s, cin, cout, th, tw, *_ = exdwpw5_configs()[name]
    ih, iw = (th - 1) * s + 3, (tw - 1) * s + 3
    r1 = max(3 * (2 * ih + 5) * (2 * iw + 5), ih * iw * 32)
    base = exdwpw5_smem(name, staged=True)
    pad = -(cout % 4) % 4  # Bps [COUT] rounded up to 4 floats
    return base + 4 * (pad + r1 + 27 * 32 + 32 + 9 * 32 + 32 + 32 * 16 + 16)


def patch_twins(version: str) -> bool:
    """fuse v48 and later: at batch <= TRIGGER_MAX_BATCH the exdwpw5 launches of EXDWPW5_PATCH_BUILDS on their patch
    twins (PATCH_SUFFIX) in place of their early-trigger twins; v47 otherwise."""
    return fuse_level(version) >= 48


def stage_twins(version: str) -> bool:
    """fuse v47 and later: at batch <= TRIGGER_MAX_BATCH the exdwpw5 launches of EXDWPW5_ASYNC_BUILDS on their staged
    twins (STAGE_SUFFIX) in place of their early-trigger twins; v46 otherwise."""
    return fuse_level(version) >= 47


def stage_twin_kind(version: str, generic: str) -> str | None:
    """The staging twin an exdwpw5 fixed build of ``generic`` runs at batch <= TRIGGER_MAX_BATCH in fuse ``version``:
    "staged" (EXDWPW5_ASYNC_BUILDS, v47 and later), "patch" (EXDWPW5_PATCH_BUILDS, v48 and later) or None (its
    early-trigger twin)."""
    if stage_twins(version) and generic in EXDWPW5_ASYNC_BUILDS:
        return "staged"
    return "patch" if patch_twins(version) and generic in EXDWPW5_PATCH_BUILDS else None


def trigger_early(version: str) -> bool:
    """fuse v45 and later: the plan's block0 v4, exdwpw5 and exdwpw6 launches at batch <= TRIGGER_MAX_BATCH on their
    early-trigger twins (TRIGGER_SUFFIX: built with PDL_TRIGGER_EARLY_DEFINES). v42's plan and tuner otherwise."""
    return fuse_level(version) >= 45


# the head kernels v46's pwpool_exit launches by PDL after the exit twin: pwpool_c8, v53's pwpool_fc_c8, v54's
# pwpool_c10, v55's pwpool_fc_c8e
EXIT_HEADS = ("pwpool_c8", "pwpool_fc_c8", "pwpool_c10", "pwpool_fc_c8e")


def pwpool_exit(version: str) -> bool:
    """fuse v46 and later: at batch <= PWPOOL_PDL_MAX_BATCH pwpool_c8 by PDL, the exdwpw6 launch before it on its exit
    twin (EXIT_SUFFIX: built with PDL_TRIGGER_EXIT_DEFINES, so its dependents start as its blocks exit)."""
    return fuse_level(version) >= 46


def trigger_set_parse(text: str) -> frozenset[int]:
    """A set of plan positions (fuse v45's CustomBackend.trigger_launches) from '1+2+5-9' (positions and inclusive
    ranges joined by '+': a kernel spec already uses ',' and ';'); '' is the empty set. Anything else -> InputError."""
    out: set[int] = set()
    for part in text.split("+") if text.strip() else []:
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise InputError(f"trigger launches {text!r}: expected plan positions and ranges joined by '+', e.g. 1+4-9")
        out.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return frozenset(out)


def trigger_set_format(positions: set[int] | frozenset[int]) -> str:
    """trigger_set_parse's inverse: sorted positions, runs of three or more as ranges ('0+1+4-9')."""
    runs: list[list[int]] = []
    for p in sorted(positions):
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return "+".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else "+".join(map(str, r)) for r in runs)


def trigger_twin_kind(name: str) -> str | None:
    """Which early-trigger twin (fuse v45) a planned launch name has: "exdwpw6" (an exdwpw6 build with its modes and
    shape fixed: build_exdwpw6_spec(early=True)), "fixed" (an exdwpw5 fixed build: build_fixed(early=True)),
    "block0" (a block0 v4 build: in kernels/block0.cu's own early build, build_file_twin), or None (no twin: the
    other kernels, among them pwpool_c8, which triggers the GEMV at its entry already)."""
    if exdwpw6_spec_parse(name)[2] is not None:
        return "exdwpw6"
    if _exdwpw5_fixed(name):
        return "fixed"
    return "block0" if name in BLOCK0_V4_BUILDS else None


def t512_builds(version: str) -> bool:
    """fuse v15 and later: each exdwpw6 block's tuner candidates include v13's builds at 512 threads per block."""
    return fuse_level(version) >= 15


# fuse v9 (pwpool, kernels/pool.cu): the last pointwise conv + global average pool as one kernel at batch <=
# PWPOOL_MAX_BATCH on maps of <= PWPOOL_MAX_HW pixels (two pixel slots per lane), COUT % PWPOOL_CO == 0, K % 4 == 0
PWPOOL_MAX_BATCH = 2  # H200, pwpool_c8 alone vs GEMM + pool (us): batch 1 9.2 / 14.4, 2 11.4 / 21.3, 4 18.2 / 17.7
PWPOOL_MAX_HW = 64
PWPOOL_CO = 8
PWPOOL_MAX_SMEM = 227 * 1024
# linear v4 (linear_c8, kernels/cblock.cu): the classifier above GEMV_MAX_BATCH up to this batch
LINEAR_C8_MAX_BATCH = 256
# linear v5: the GEMV by programmatic dependent launch up to this batch (H200, session 14, interleaved A/B, graph:
# batch 1 -0.7 us over 8 pairs; batch 2 and 8 +0.5 to +1.5 us, within the instances' spread: v3's plain launch there)
LINEAR_PDL_MAX_BATCH = 1
# linear v6 (session 40): x staged in dynamic shared memory, N * IN * 4 bytes, at most this (no opt-in needed)
LINEAR_V6_MAX_SMEM = 48 * 1024
PWPOOL_PDL_MAX_BATCH = 1  # fuse v12


def pwpool_smem(hw: int, k: int) -> int:
    """Dynamic shared memory (bytes) of pwpool (kernels/pool.cu header): input rows, weight columns, partials."""
    return 4 * (hw * (k + 4) + PWPOOL_CO * k + 8 * PWPOOL_MAX_HW * PWPOOL_CO)


def linear_c8_smem(k: int) -> int:
    """Dynamic shared memory (bytes) of linear_c8 (kernels/cblock.cu): the k slice of 64 input rows and of the
    cluster's 64 weight columns, the two partial tiles (k halves)."""
    kw = 4 * ((k + 31) // 32)
    return 4 * (64 * (kw + 4) + kw * 64 + 2 * 64 * 68)


def pwpool_c8_smem(hw: int, k: int) -> int:
    """Dynamic shared memory (bytes) of pwpool_c8 (kernels/cblock.cu): the k slice of the input rows and of the
    cluster's 64 weight columns, the partial map."""
    kw = 4 * ((k + 31) // 32)
    return 4 * (hw * (kw + 4) + kw * 64 + 64 * 68)


# fuse v54: pwpool_c10 (80 output channels per cluster of 8) in place of pwpool_c8 up to this batch, where COUT % 80
# == 0 and its grid (COUT / 10 blocks per image) fits one block per SM
PWPOOL_C10_MAX_BATCH = 1


def pwpool_c10(version: str) -> bool:
    """fuse v54 alone: at batch <= PWPOOL_C10_MAX_BATCH the head's pwpool_c8 as pwpool_c10 where it applies (COUT % 80
    == 0, its grid within one block per SM, its shared memory), else pwpool_c8 and a fallback note. Measured 0.5 us
    slower than v51 at batch 1 on the H100 (session 44), so a later version builds on v51 / v53, not on this."""
    return fuse_level(version) == 54


def pwpool_c10_smem(hw: int, k: int) -> int:
    """Dynamic shared memory (bytes) of pwpool_c10 (kernels/cblock.cu): the k slice of the input rows and of the
    cluster's 80 weight columns in 8 warp groups of 12 floats, the partial map (64 rows of 84)."""
    kw = 4 * ((k + 31) // 32)
    return 4 * (hw * (kw + 4) + kw * 96 + 64 * 84)


def pwpool_fc_oc(out: int) -> int:
    """fuse v31 (pwpool_fc_c8): the classifier columns per block of a cluster (a multiple of 4; 128 at OUT 1000)."""
    return 4 * ((out + 31) // 32)


def pwpool_fc_c8_smem(hw: int, k: int, out: int) -> int:
    """Dynamic shared memory (bytes) of pwpool_fc_c8 (kernels/cblock.cu): pwpool_c8's, the block's slice of the
    classifier's W^T (64 rows x OC columns), the cluster's 64 pooled channels, the 8 warps' partial logits."""
    oc = pwpool_fc_oc(out)
    return pwpool_c8_smem(hw, k) + 4 * (64 * oc + 64 + 8 * oc)


def head_fc(version: str) -> bool:
    """fuse v31, v38, v53 and v55: at batch <= PWPOOL_MAX_BATCH the head's pwpool_c8 and the classifier after it as
    one kernel (pwpool_fc_c8; v55's pwpool_fc_c8e, head_fc_kernel), where they apply; else the base version's two
    kernels (a recorded fallback; head_fc_base). v32 - v37 build on v30 without it, so that each is measured on its
    own; v38 puts it on top of v36, v53 and v55 on top of v51 (where v46's pwpool_exit launches it by PDL at batch 1).
    v31 and v38 were not carried into later versions (no resolved gain on the H200: v39 builds on v36)."""
    return fuse_level(version) in HEAD_FC_BASES


# head_fc's versions -> the version each builds on (its plan where pwpool_fc_c8 does not apply)
HEAD_FC_BASES = {31: "v30", 38: "v36", 53: "v51", 55: "v51"}


def head_fc_early(version: str) -> bool:
    """fuse v55: head_fc's kernel is pwpool_fc_c8e (the classifier slice requested before its griddepcontrol.wait)."""
    return head_fc(version) and fuse_level(version) >= 55


def head_fc_kernel(version: str) -> str:
    """The generic build of head_fc's fused head: pwpool_fc_c8e where head_fc_early, else pwpool_fc_c8."""
    return "pwpool_fc_c8e" if head_fc_early(version) else "pwpool_fc_c8"


def head_fc_base(version: str) -> str:
    """The fuse version whose plan head_fc's version runs where pwpool_fc_c8 does not apply (HEAD_FC_BASES: v30 for
    v31, v51 for v53 and v55), else v36."""
    return HEAD_FC_BASES.get(fuse_level(version), "v36")


# fuse v6 (exdwpw6, kernels/cblock.cu): expanded channels per block of the compiled builds; the largest batch and
# input map (pixels per image) the plan uses it at, elsewhere fuse v5 (measured on H100, results/NOTES.md "fuse v6":
# at batch 1 it beats v5 on every block of <= 28x28 input, loses on the 112x112 one (12.3 vs 8.5 us for exdwpw5);
# at batch 2 it wins on 7 of 14 blocks by <= 2 us and loses on the others); the shared memory a block may take
EXDWPW6_CH = (8, 12, 16)
# fuse v13: the wider builds as (CH, cluster size); 16 is a non-portable cluster size (the host opts each kernel in)
EXDWPW6_WIDE = ((24, 8), (40, 8), (12, 16), (20, 16), (24, 16), (36, 16))
# fuse v14: clusters of 4, 6 and 12 (12 non-portable): CE 144 (the 56x56 blocks) with one cluster per row tile (c12x12,
# c24x6, c36x4), CE 96 (the stride-2 block on the 112x112 map) at 24 / 16 / 8 channels per block
EXDWPW6_V14 = ((12, 12), (24, 6), (36, 4), (24, 4), (16, 6), (8, 12))
# fuse v15: v13's builds also at 512 threads per block (exdwpw6_c<CH>[x<CL>]_t512; one block per SM)
EXDWPW6_T512 = tuple((ch, 8) for ch in EXDWPW6_CH) + EXDWPW6_WIDE
# fuse v39: CE 960 (the 7x7 blocks) in one cluster of 16 per row tile: 60 channels per block (their expansion and
# projection weights 77 / 115 KB of shared memory: one block per SM), compiled at 512 threads only
EXDWPW6_V39 = ((60, 16),)


def exdwpw6_threads_ok(ch: int, cl: int, nt: int) -> bool:
    """Whether build (CH, CL) is compiled at NT threads per block: every build at 256 and (fuse v15) 512, but fuse
    v39's EXDWPW6_V39 at 512 only."""
    return nt == 512 or (ch, cl) not in EXDWPW6_V39


NG1_MAX_BATCH = 1  # fuse v40's rule (the in-graph evidence is batch 1's)
EXDWPW6_MAX_BATCH = 1
# fuse v13 (its configurations autotuned, the wider builds): the largest batch it runs the blocks as exdwpw6 at (H200,
# session 15, all 13 blocks exdwpw6 against v11's plan, 2 interleaved instance pairs each: batch 2 0.2344 -> 0.2123
# ms, batch 3 0.2765 -> 0.2626, batch 4 0.2992 -> 0.3223, batch 8 0.388 -> 0.552)
EXDWPW6_V13_MAX_BATCH = 3


def exdwpw6_per_sm(version: str) -> int:
    """The most exdwpw6 blocks per SM the configurations of fuse ``version`` may count on (v9+: 2, else 1)."""
    return 2 if fuse_level(version) >= 9 else 1


def exdwpw6_max_batch(version: str) -> int:
    """The largest batch whose plan runs the <= 28x28 bottleneck blocks as exdwpw6 kernels under fuse ``version``."""
    return EXDWPW6_V13_MAX_BATCH if wide_clusters(version) else EXDWPW6_MAX_BATCH


EXDWPW6_MAX_MAP = 28 * 28
EXDWPW6_MAX_SMEM = 227 * 1024 - 64


# fuse v10 (exdwpw10, kernels/cblock.cu): the same CH builds as exdwpw6; phase B tiles of PB_PM pixels x PB_PN channels
EXDWPW10_PM, EXDWPW10_PN = 8, 16


def exdwpw10_kernel(ch: int) -> str:
    return f"exdwpw10_c{ch}"


def exdwpw10_smem(h: int, w: int, cin: int, ce: int, wo: int, stride: int, tr: int, ch: int) -> int:
    """Dynamic shared memory (bytes) of exdwpw10_c<CH> (kernels/cblock.cu: the larger of its two phases)."""
    ipmax = min(h, (tr - 1) * stride + 3) * w
    cs = ch + 4 if ch % 8 == 0 else ch
    phase_a = ipmax * (cin + 4) + (ipmax + tr * wo) * cs + cin * ch + 11 * ch
    phase_b = EXDWPW10_PM * (ce + 4) + ce * EXDWPW10_PN + 8 * 32 * 4
    return 4 * max(phase_a, phase_b)


def exdwpw6_kernel(ch: int, cl: int = 8, nt: int = 256) -> str:
    return f"exdwpw6_c{ch}" + ("" if cl == 8 else f"x{cl}") + ("" if nt == 256 else f"_t{nt}")


def exdwpw6_smem(h: int, w: int, cin: int, cout: int, wo: int, stride: int, tr: int, ch: int, ex_ks: int = 0) -> int:
    """Dynamic shared memory (bytes) of exdwpw6_c<CH> with TR output rows per tile (kernels/cblock.cu header); fuse
    v30's expansion modes (ex_ks = ex_pack(KS, EC >= 1)) add the k slices' skew, (KS - 1) * EX_WSK floats."""
    cs = ch + 4 if ch % 8 == 0 else ch
    ipmax = min(h, (tr - 1) * stride + 3) * w
    r0 = max(ipmax * (cin + 4), tr * wo * (cout + 4))
    ks, ec = ex_unpack(ex_ks)
    skew = (ks - 1) * EX_WSK if ec and ks > 1 else 0
    return 4 * (r0 + ipmax * cs + tr * wo * cs + cin * ch + skew + ch * cout + 9 * ch + 2 * ch)


def exdwpw6_push_bytes(tr: int, wo: int, cout: int, cl: int) -> int:
    """Shared memory (bytes) that session 25's measuring build -DEXDWPW6_PUSH=1 adds to exdwpw6_smem: the receive
    buffer of CL senders x ceil(TR * Wo * COUT / 4 / CL) float4 units (kernels/cblock.cu exdwpw6_body, step 4)."""
    return 16 * cl * -(-(tr * wo * (cout // 4)) // cl)


def exdwpw6_bulkred_bytes(tr: int, wo: int, cout: int, cl: int) -> int:
    """Shared memory (bytes) that the bulk-copy reduce (fuse v37's red_pf 2) adds to exdwpw6_smem: the receive buffer
    of CL senders x ceil(TR * Wo / CL) pixel rows of COUT + 4 floats (kernels/cblock.cu exdwpw6_body)."""
    return 4 * cl * -(-(tr * wo) // cl) * (cout + 4)


def exdwpw6_launch_smem(h: int, w: int, cin: int, cout: int, wo: int, stride: int, tr: int, ch: int, ex_ks: int,
                        cl: int, red_pf: int) -> int:  # fmt: skip
    """exdwpw6_smem, plus fuse v37's receive buffer where red_pf is 2 (exdwpw6_bulkred_bytes)."""
    extra = exdwpw6_bulkred_bytes(tr, wo, cout, cl) if red_pf == 2 else 0
    return exdwpw6_smem(h, w, cin, cout, wo, stride, tr, ch, ex_ks) + extra


# gemm v7 (3xTF32 tensor-core) tiles: (BM, BN, WM, WN) with WM x WN the warp tile, 8 warps each
GEMM_TILES_TC = ((128, 128, 64, 32), (128, 64, 32, 32), (128, 32, 32, 16), (64, 64, 32, 16), (64, 32, 16, 16))
# gemm v8 SIMT tiles (BM, BN, TM, TN), (BM / TM) * (BN / TN) threads; kernels/gemm.cu GEMM_V8_KERNEL lines
GEMM_TILES_V8 = (
    (128, 128, 8, 8),
    (128, 96, 8, 8),
    (128, 64, 8, 4),
    (64, 128, 4, 8),
    (64, 160, 4, 8),
    (64, 96, 4, 8),
    (32, 160, 4, 8),
    (128, 32, 4, 4),
    (64, 64, 4, 4),
)
# gemm v9 = v8 + tiles whose block counts fill the 132 SMs evenly on the 14x14 maps at batch 64 (M = 12544:
# 131 blocks of 96 rows, 392 of 32) where v8's 64-row tiles make 196 (session 8; results/NOTES.md "gemm v9")
GEMM_TILES_V9 = GEMM_TILES_V8 + (
    (96, 64, 4, 4),
    (96, 96, 4, 8),
    (32, 64, 4, 4),
    (32, 96, 4, 8),
)
# gemm v10 = v9 + k-sliced v8 tiles (BM, BN, TM, TN, KS): KS thread groups split each 16-wide k-step of the tile,
# (BM / TM) * (BN / TN) * KS threads (session 10; kernels/gemm.cu GEMM_V8K_KERNEL lines)
GEMM_TILES_V10 = GEMM_TILES_V9 + (
    (32, 96, 4, 8, 2),
    (32, 160, 4, 8, 2),
    (32, 64, 8, 8, 4),
    (32, 96, 8, 12, 4),
    (32, 64, 8, 8, 8),
    (32, 160, 8, 20, 2),
    (32, 160, 8, 20, 4),
)
# gemm v11 = v10 + 64-row k-sliced tiles (session 10; measured and the default in session 11, results/NOTES.md)
GEMM_TILES_V11 = GEMM_TILES_V10 + (
    (64, 64, 8, 8, 2),
    (64, 64, 8, 8, 4),
    (64, 96, 8, 12, 2),
    (64, 128, 8, 16, 2),
    (64, 160, 8, 20, 2),
)
# the gemm versions with split-K (v5's model) on the v4 / v3 kernels
GEMM_SPLITK_VERSIONS = ("v5", "v6", "v7", "v8", "v9", "v10", "v11")


def gemm_simt_tiles(version: str) -> tuple[tuple[int, ...], ...]:
    """The cp.async SIMT tiles (GEMM_V8_KERNEL / GEMM_V8K_KERNEL builds) that gemm `version` adds as autotune
    candidates: (BM, BN, TM, TN), or (BM, BN, TM, TN, KS) for a k-sliced build."""
    return {"v8": GEMM_TILES_V8, "v9": GEMM_TILES_V9, "v10": GEMM_TILES_V10, "v11": GEMM_TILES_V11}.get(version, ())


def gemm_simt_threads(tile: tuple[int, ...]) -> int:
    """Threads per block of a gemm v8 / v10 build: (BM / TM) * (BN / TN), times KS for a k-sliced one."""
    bm, bn, tm, tn = tile[:4]
    return (bm // tm) * (bn // tn) * (tile[4] if len(tile) > 4 else 1)


_GEMM_V8_MACRO = re.compile(r"^GEMM_V8K?_KERNEL\((\w+),((?:\s*\d+\s*,?){6,7})\)", re.M)


@functools.cache
def gemm_v8_smem(tile: tuple[int, ...]) -> int:
    """Dynamic shared memory (bytes) of a gemm v8 / v10 build: STAGES * 16 * (BM + 4 + BN) floats (the cp.async
    ring), STAGES read from its GEMM_V8_KERNEL / GEMM_V8K_KERNEL line in kernels/gemm.cu; a k-sliced build reuses
    the ring for its KS * BM * BN partial sums, so it takes the larger of the two."""
    name = gemm_tile_kernel("v8", tile, False)
    for m in _GEMM_V8_MACRO.finditer((KERNEL_DIR / "gemm.cu").read_text()):
        if m.group(1) == name:
            vals = [int(v) for v in m.group(2).split(",")]
            bm, bn, _, _, stages = vals[:5]
            ks = vals[6] if len(vals) > 6 else 1
            return 4 * max(stages * 16 * (bm + 4 + bn), ks * bm * bn if ks > 1 else 0)
    raise KeyError(name)


# gemm v6 streaming kernels: K -> columns per thread
GEMM_SMALLK = {16: 4, 24: 2, 32: 2}
# fp16 tensor-core GEMM (hgemm v2) tiles (BM, BN) -> threads per block; kernels/half.cu
HGEMM_THREADS = {
    (128, 128): 256,
    (128, 64): 128,
    (64, 128): 128,
    (64, 64): 128,
    (128, 32): 128,
    (64, 32): 64,
    (32, 32): 64,
}
HGEMM_TILES = tuple(HGEMM_THREADS)
HGEMM_TILES_F32 = ((64, 64), (32, 32))
# hgemm v4 (impls/_custom_hgemm_v4.py): split-K tiles (BM, BN) -> threads (v3's tiles + 64x160, 128x96)
HGEMM4_THREADS = {**HGEMM_THREADS, (64, 160): 128, (128, 96): 128}
HGEMM4_TILES = tuple(HGEMM4_THREADS)
# hgemm v4 small-K (K <= 32) persistent tiles -> threads
HGEMM4_SK_THREADS = {(64, 96): 128, (64, 144): 128, (128, 64): 128, (64, 64): 128, (128, 32): 128, (128, 16): 128}
HGEMM4_SK_TILES = tuple(HGEMM4_SK_THREADS)  # fp32-output builds (the classifier above batch 8)
# fp16 kernels every fp16 plan may launch whatever the versions (conversions, residual add)
# hdepthwise v3 tiles (TW, TH) per stride, largest work per thread first (kernels hdw3_v3_s<S>_w<TW>h<TH>)
HDW3_V3_TILES = {1: ((4, 1), (2, 2), (2, 1), (1, 1)), 2: ((2, 1), (1, 2), (1, 1))}
# hfuse v2 (hexdw) output tiles (T x T) per depthwise stride (kernels hexdw_s<S>_t<T>_c<CIN>)
HEXDW_TILES = {1: (14, 7), 2: (7,)}
HALF_HELPERS = ("h_from_nchw_f32", "h_to_nchw_f32", "f32_to_h", "h_to_f32", "hadd")


def hgemm_kernel(tile: tuple[int, int], f32_out: bool = False, version: str = "v2") -> str:
    """hgemm v2 / v3 kernel of a tile; the fp32-output builds exist as v2 only (the classifier)."""
    return f"hgemm_{'v2' if f32_out else version}_{tile[0]}x{tile[1]}" + ("_f32" if f32_out else "")


def hdw3_v3_kernel(stride: int, tile: tuple[int, int], version: str = "v3") -> str:
    """hdepthwise v3 (fp32 math) or v4 (half2 math, same tiles) kernel of a stride and a (TW, TH) tile."""
    return f"hdw3_{version}_s{stride}_w{tile[0]}h{tile[1]}"


def hexdw_kernel(stride: int, tile: int, cin: int) -> str:
    """hfuse v2 kernel of a depthwise stride, a T x T output tile and the expansion's input channels."""
    return f"hexdw_s{stride}_t{tile}_c{cin}"


# hfuse v3 (hexdw3) builds: blocks per SM of __launch_bounds__ (3: 80 registers, 2: no spills, suffix _b2)
HEXDW3_OCC = (3, 2)


def hexdw3_kernel(stride: int, tile: int, cin: int, occ: int = 3) -> str:
    """hfuse v3 kernel of a depthwise stride, a T x T output tile, the expansion's input channels and a build."""
    return f"hexdw3_s{stride}_t{tile}_c{cin}" + ("" if occ == 3 else f"_b{occ}")


# hfuse v4 (hexdwpw4, kernels/half.cu): compiled (stride, T, CIN, COUT) block instances: MobileNetV2-1.0's six blocks
HEXDWPW4_INSTANCES = ((2, 7, 16, 24), (1, 14, 24, 24), (1, 7, 24, 24), (2, 7, 24, 32), (1, 14, 32, 32), (1, 7, 32, 32),
                      (2, 7, 32, 64))  # fmt: skip


def hexdwpw4_kernel(stride: int, tile: int, cin: int, cout: int) -> str:
    return f"hexdwpw4_s{stride}_t{tile}_c{cin}_p{cout}"


def hexdwpw4_smem(stride: int, tile: int, cin: int) -> int:
    """Dynamic shared memory (bytes) of a hexdwpw4 build: the input patch (MR rows x (KP + 8) halves), the
    expanded patch (MR x 32 halves) and the depthwise output chunk (T*T x 32 halves); as hexdwpw4_body."""
    kp = 16 if cin <= 16 else 32
    pw = (tile - 1) * stride + 3
    slots = pw * (pw if stride == 1 else 16)
    mr = -(-slots // 16) * 16
    return 2 * (mr * (kp + 8) + mr * 32 + tile * tile * 32)


def gemm_tile_kernel(version: str, tile: tuple[int, ...], vec: bool) -> str:
    """Kernel name of a GEMM tile: gemm_<version>_<BM>x<BN>_<TM>x<TN>[_vec], + _k<KS> for a k-sliced v8 build."""
    bm, bn, tm, tn = tile[:4]
    ks = f"_k{tile[4]}" if len(tile) > 4 else ""
    return f"gemm_{version}_{bm}x{bn}_{tm}x{tn}" + ("_vec" if vec else "") + ks


def dwpw_kernel(stride: int, tile: tuple[int, int, int, int]) -> str:
    bm, bn, tm, tn = tile
    return f"dwpw_s{stride}_{bm}x{bn}_{tm}x{tn}"


def kernels_of(family: str, version: str) -> list[tuple[str, str]]:
    """(file, kernel name) of every kernel that (family, version) may launch, helpers included."""
    if family == "gemm":
        if version in ("v1", "v2"):
            return [("gemm", f"gemm_{version}")]
        # v5 - v9 launch the v4 kernels (split-K), and the v3 ones where the autotuner finds them faster
        bases = ("v4", "v3") if version in GEMM_SPLITK_VERSIONS else (version,)
        names = [gemm_tile_kernel(b, t, True) for b in bases for t in GEMM_TILES_VEC]
        names += [gemm_tile_kernel(b, t, False) for b in bases for t in GEMM_TILES_SCALAR]
        if version == "v7":
            names += [gemm_tile_kernel("v7", t, False) for t in GEMM_TILES_TC]
        names += [gemm_tile_kernel("v8", t, False) for t in gemm_simt_tiles(version)]
        if version in GEMM_SPLITK_VERSIONS:
            names.append("gemm_splitk_reduce")
        if version == "v6":
            names += [f"gemm_smallk_k{k}_c{cw}" for k, cw in GEMM_SMALLK.items()]
        return [("gemm", n) for n in names]
    if family == "stem":
        out = [("conv", "im2col_nhwc")]  # v2 and v3 fall back to v1 / v2 for shapes they do not take
        if version in ("v2", "v3"):
            out.append(("conv", "conv_direct_nhwc"))
        if version == "v3":
            out.append(("conv", "conv3x3c3_nhwc"))
        return out
    if family == "depthwise":
        if version == "v1":
            return [("conv", "dwconv3_v1")]
        out = [("conv", "dwconv3_v2_s1"), ("conv", "dwconv3_v2_s2")]
        if version == "v3":
            out += [("conv", f"dwconv3_v3_s{s}{t}") for s in (1, 2) for t in ("", "_tw1")]
        return out
    if family == "pool":
        return [("pool", f"pool_{version}")]
    if family == "linear":
        if version in ("v3", "v4", "v5", "v6"):  # v2's kernel where IN % 4 != 0
            out = [("linear", "linear_gemv"), ("linear", "linear_gemv_v3")]
            if version in ("v5", "v6"):  # v3's kernel where no programmatic dependent launch is available
                out.append(("linear", "linear_gemv_v5"))
            if version == "v6":  # its own kernel (v5's above where x does not fit LINEAR_V6_MAX_SMEM)
                out.append(("linear", "linear_gemv_v6"))
            return out + ([("cblock", "linear_c8")] if version == "v4" else [])
        return [("linear", "linear_gemv")] if version == "v2" else []
    if family == "add":
        return [("add", "add_v1")] if version == "v1" else [("add", "add_v1"), ("add", "add_v2")]
    if family == "hgemm":
        if version == "v1":
            return [("half", "hgemm_v1"), ("half", "hgemm_v1_f32")]
        if version == "v4":  # v4 also launches the v3 kernels where the autotuner finds them faster
            out = [("half", hgemm_kernel(t, False, "v3")) for t in HGEMM_TILES]
            out += [("half", f"hgemm_v4_{t[0]}x{t[1]}") for t in HGEMM4_TILES]
            out += [("half", f"hgemm_v4_sk_{t[0]}x{t[1]}") for t in HGEMM4_SK_TILES]
            out += [("half", "hgemm_v4_splitk_reduce")]
            out += [("half", hgemm_kernel(t, True)) for t in HGEMM_TILES_F32]
            return out + [("half", "hgemm_v1"), ("half", "hgemm_v1_f32")]
        out = [("half", hgemm_kernel(t, False, version)) for t in HGEMM_TILES] + [
            ("half", hgemm_kernel(t, True)) for t in HGEMM_TILES_F32
        ]
        return out + [("half", "hgemm_v1"), ("half", "hgemm_v1_f32")]  # v2 falls back to v1 for odd shapes
    if family == "hdepthwise":
        out = [("half", "hdw3_v1")]
        if version in ("v2", "v3", "v4"):  # v3 / v4 launch v2's stride-2 kernels on the larger maps
            out += [("half", f"hdw3_v2_s{s}{t}") for s in ((1, 2) if version == "v2" else (2,)) for t in ("", "_tw1")]
        vers = {"v3": ("v3",), "v4": ("v3", "v4")}.get(version, ())  # v4 keeps v3's kernels on small grids
        out += [("half", hdw3_v3_kernel(s, t, v)) for v in vers for s, tiles in HDW3_V3_TILES.items() for t in tiles]
        return out
    if family == "hstem":
        out = [("half", "hconv_direct_nchw32"), ("half", "hconv_direct_nhwc")]
        if version == "v1":
            return out
        if version == "v4":  # falls back to v3 where the staging buffer does not fit
            return out + [("half", "hstem3x3c3_v3_nchw32"), ("half", "hstem3x3c3_v4_nchw32")]
        if version == "v5":
            return out + [("half", "hstem3x3c3_v3_nchw32"), ("half", "hstem3x3c3_v3_nhwc16")]
        return out + [("half", "hstem3x3c3_nchw32" if version == "v2" else "hstem3x3c3_v3_nchw32")]
    if family == "hpool":
        return [("half", "hpool_v1")]
    if family == "hlinear":
        return [("half", "hlinear_gemv")]
    if family == "hfuse":
        if version == "v1":
            return []
        if version in ("v3", "v4"):  # v4 launches v3's pair kernels where its block kernel does not apply / lost
            out = [
                ("half", hexdw3_kernel(s, t, c, o)) for s, ts in HEXDW_TILES.items() for t in ts for c in EXDW_CIN
                for o in HEXDW3_OCC
            ]  # fmt: skip
            if version == "v4":
                out += [("half", hexdwpw4_kernel(*inst)) for inst in HEXDWPW4_INSTANCES]
            return out
        return [("half", hexdw_kernel(s, t, c)) for s, ts in HEXDW_TILES.items() for t in ts for c in EXDW_CIN]
    if family == "net":
        return [("persistent", "net_persistent")] if version == "v2" else []
    if family == "fuse":
        if version == "v1":
            return []
        lv = fuse_level(version)
        if lv >= 3:
            prefix = "exdw" if version == "v3" else "exdw4"
            out = [("conv", f"{prefix}_s{s}_c{c}") for s in (1, 2) for c in EXDW_CIN]
            if lv >= 5:
                out += [("conv", exdwpw5_kernel(s, ci, co, (th, tw))) for s, ci, co, th, tw in EXDWPW5_INSTANCES]
            if lv >= 6:
                out += [("cblock", exdwpw6_kernel(ch)) for ch in EXDWPW6_CH]
            if wide_clusters(version):
                out += [("cblock", exdwpw6_kernel(ch, cl)) for ch, cl in EXDWPW6_WIDE]
            if v14_clusters(version):
                out += [("cblock", exdwpw6_kernel(ch, cl)) for ch, cl in EXDWPW6_V14]
            if t512_builds(version):
                out += [("cblock", exdwpw6_kernel(ch, cl, 512)) for ch, cl in EXDWPW6_T512]
            if ng1_builds(version):
                out += [("cblock", exdwpw6_kernel(ch, cl, 512)) for ch, cl in EXDWPW6_V39]
            if lv >= 7:
                out += [("gemm", exgdw_kernel(s, v)) for s in (1, 2) for v in EXGDW_VARIANTS]
            if lv >= 8:
                out += [("conv", name) for name in exdwpw8_configs()]
            if lv >= 9:
                out += [("pool", "pwpool"), ("cblock", "pwpool_c8")]
                out += [("conv", exdwpw5_kernel(s, ci, co, (th, tw))) for s, ci, co, th, tw in EXDWPW5_V9_INSTANCES]
            if head_fc(version):
                out.append(("cblock", head_fc_kernel(version)))
            if pwpool_c10(version):
                out.append(("cblock", "pwpool_c10"))
            if two_phase(version):
                out += [("cblock", exdwpw10_kernel(ch)) for ch in EXDWPW6_CH]
            if lv >= 11:
                out += [("conv", name + sfx) for name, (sfx, _) in EXDWPW5_BIG_CHUNK.items()]
            out += [("conv", name + sfx) for name, (sfx, _, _) in exdwpw5_splits(version).items()]
            out += [("conv", name) for name in exdwpw5_retile(version).values()]
            return out
        out = [("gemm", dwpw_kernel(s, t)) for s in (1, 2) for t in GEMM_TILES_VEC]
        return out + [("gemm", "gemm_splitk_reduce")]
    if family == "block0":
        if version == "v1":
            return []
        out = [("block0", block0_kernel(a, b, version)) for a, b in BLOCK0_SHAPES]
        if version == "v4":  # v3's kernels where the v3 grid fills the GPU; the 4-block cluster build of 32 -> 16;
            return (  # fuse v44: the epoch twins
                out
                + [("block0", block0_kernel(a, b, "v3")) for a, b in BLOCK0_SHAPES]
                + [("block0", block0_kernel(32, 16, "v4") + "_k4")]
                + [("block0", n + EPOCH_SUFFIX) for n in BLOCK0_V4_BUILDS]
            )
        return out + ([("block0", block0_kernel(32, 16, "v3") + "_occ2")] if version == "v3" else [])
    if family == "hblock0":
        return [] if version == "v1" else [("block0", hblock0_kernel(a, b, version)) for a, b in BLOCK0_SHAPES]
    raise KeyError(family)


def default_kernels() -> set[tuple[str, str]]:
    """Every kernel the backend can launch with the default versions (layout conversion included)."""
    out = {("layout", "transpose_batched"), ("layout", "nchw_to_nhwc_smallc")} | {("half", k) for k in HALF_HELPERS}
    for fam, ver in DEFAULT_VERSIONS.items():
        out.update(kernels_of(fam, ver))
    return out


def parse_versions(spec: str | dict[str, str] | None) -> dict[str, str]:
    """'gemm=v2,pool=v1' (or a dict) over the defaults; unknown family or version -> InputError."""
    versions = dict(DEFAULT_VERSIONS)
    if not spec:
        return versions
    items = (
        spec.items()
        if isinstance(spec, dict)
        else (tuple(p.split("=", 1)) if "=" in p else (p, "") for p in str(spec).split(",") if p.strip())
    )
    for fam, ver in items:
        fam, ver = fam.strip(), ver.strip()
        if fam not in KERNEL_VERSIONS:
            raise InputError(f"unknown kernel family {fam!r} in {spec!r}; families: {', '.join(KERNEL_VERSIONS)}")
        if ver not in KERNEL_VERSIONS[fam]:
            raise InputError(
                f"unknown version {ver!r} for kernel family {fam!r}; versions: {', '.join(KERNEL_VERSIONS[fam])}"
            )
        versions[fam] = ver
    return versions


# -- building ---------------------------------------------------------------------------------------
NVCC_FLAGS = ("-std=c++17", "-O3", "-lineinfo")


def find_nvcc() -> str | None:
    nvcc = shutil.which("nvcc")
    if nvcc:
        return nvcc
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").exists():
            return str(Path(root) / "bin" / "nvcc")
    return None


# kernel files built for the architecture-specific target (sm_90a on an H100): kernels/cblock.cu multicasts bulk copies
# to its thread-block cluster (cp.async.bulk .multicast::cluster), an sm_90a feature (ptxas warns on plain sm_90)
ARCH_SPECIFIC_FILES = ("cblock",)


def file_arch(name: str, arch: str) -> str:
    """The -arch target of one kernel file: sm_<arch>, or sm_<arch>a for ARCH_SPECIFIC_FILES on sm_90 and later."""
    return f"{arch}a" if name in ARCH_SPECIFIC_FILES and arch.isdigit() and int(arch) >= 90 else arch


def nvcc_command(nvcc: str, source: Path, output: Path, arch: str, verbose: bool = False) -> list[str]:
    target = file_arch(source.stem, arch)
    cmd = [nvcc, *NVCC_FLAGS, f"-arch=sm_{target}", "-cubin", "-o", str(output), str(source)]
    if verbose:
        cmd[1:1] = ["-Xptxas", "-v"]
    return cmd


def cache_dir() -> Path:
    d = Path(os.environ.get("MBV2_CACHE", Path.home() / ".cache" / "mbv2")) / "kernels"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Built:
    name: str  # file stem
    path: Path | None  # cubin (nvcc) or None (NVRTC from source)
    source: str


def _compile_cached(
    src_path: Path, source: str, stem: str, defines: list[str], arch: str, nvcc: str, what: str
) -> Path:
    """nvcc on ``src_path`` (+ ``defines``) for sm_<arch> (file_arch), into the disk cache keyed by the source, the
    options and the target; compiled only where the cubin is missing (a per-process temporary, then a rename)."""
    key = hashlib.sha256((source + "|".join([*NVCC_FLAGS, *defines]) + arch + nvcc).encode()).hexdigest()[:16]
    out = cache_dir() / f"{stem}-sm{arch}-{key}.cubin"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = nvcc_command(nvcc, src_path, tmp, arch)
        cmd[1:1] = defines
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BackendUnavailable(f"nvcc failed on {what}:\n{proc.stderr.strip()}")
        os.replace(tmp, out)
    return out


def build_one(name: str, arch: str, nvcc: str | None, extra: tuple[str, ...] = (), stem: str | None = None) -> Built:
    """Kernel file ``name`` compiled for sm_<arch> (file_arch; cached on disk by source, options and target), with
    MBV2_PDL_TRIGGER's defines and ``extra``; the Built (and the cubin) named ``stem`` (default: the file's stem)."""
    src_path = KERNEL_DIR / f"{name}.cu"
    source = src_path.read_text()
    defines = _with_defines(process_defines(name), extra)
    stem = stem or name
    if nvcc is None:
        return Built(stem, None, _defines_head(defines) + source)
    what = f"kernels/{name}.cu for sm_{file_arch(name, arch)}" + (f" ({' '.join(defines)})" if defines else "")
    return Built(stem, _compile_cached(src_path, source, stem, defines, arch, nvcc, what), source)


def build_file_twin(name: str, arch: str, nvcc: str | None) -> Built:
    """fuse v45: kernel file ``name`` (block0) with PDL_TRIGGER_EARLY_DEFINES, as Built <name>TRIGGER_SUFFIX (its
    kernels keep their names: the backend keeps each as <kernel>TRIGGER_SUFFIX)."""
    if name not in PDL_TRIGGER_FILES:
        raise ValueError(f"kernels/{name}.cu has no PDL_TRIGGER_EARLY")
    return build_one(name, arch, nvcc, PDL_TRIGGER_EARLY_DEFINES, name + TRIGGER_SUFFIX)


def _defines_head(defines: list[str]) -> str:
    """-D options as #define lines, for NVRTC (the source compiled without nvcc)."""
    return "".join("#define " + d[2:].replace("=", " ", 1) + "\n" for d in defines)


def build_exdwpw6_spec(
    name: str,
    modes: tuple[int, int, int, int],
    arch: str,
    nvcc: str | None,
    shape: tuple[int, ...] | None = None,
    stamp: bool = False,
    extra: tuple[str, ...] = (),
    flags: bool = False,
    early: bool = False,
    at_exit: bool = False,
) -> Built:
    """fuse v22: kernels/cblock.cu with only exdwpw6 build ``name``, its modes (fuse v23: and shape) fixed
    (exdwpw6_spec_defines), compiled for sm_<arch>a (cached on disk by source, options and target; ~1 s). Without nvcc:
    the source for NVRTC (Built.source holds the defines as #define lines in front of the file). ``stamp``: the build
    also holds its clock-stamped twin <spec>_stamp (EXDWPW6_STAMP_NAME; scripts/cblock_sweep.py --stamps --plan).
    ``extra``: more -D options (measuring builds only, e.g. kernels/cblock.cu EXDWPW6_EX_FULL; never planned).
    ``flags``: the flag hand-off twin (fuse v43; EXDWPW6_FLAG_DEFINES, shape fixed), named <spec>FLAG_SUFFIX.
    ``early``: the early-trigger twin (fuse v45; PDL_TRIGGER_EARLY_DEFINES, shape fixed), named <spec>TRIGGER_SUFFIX.
    ``at_exit``: the exit twin (fuse v46; PDL_TRIGGER_EXIT_DEFINES, shape fixed, never MBV2_PDL_TRIGGER's define),
    named <spec>EXIT_SUFFIX."""
    src_path = KERNEL_DIR / "cblock.cu"
    source = src_path.read_text()
    defines = exdwpw6_spec_defines(name, modes, shape) + list(extra) + process_defines("cblock")
    spec = exdwpw6_spec_name(name, modes, shape)
    if flags:
        if shape is None or stamp:
            raise ValueError(f"{spec}: a flag twin needs a fixed shape and no stamps")
        spec += FLAG_SUFFIX
        defines = _renamed(defines, "EXDWPW6", spec, EXDWPW6_FLAG_DEFINES)
    if early:
        if shape is None or stamp or flags:
            raise ValueError(f"{spec}: an early-trigger twin needs a fixed shape, no stamps and no flags")
        spec += TRIGGER_SUFFIX
        defines = _renamed(defines, "EXDWPW6", spec, PDL_TRIGGER_EARLY_DEFINES)
    if at_exit:
        if shape is None or stamp or flags or early:
            raise ValueError(f"{spec}: an exit twin needs a fixed shape, no stamps, no flags and no early trigger")
        spec += EXIT_SUFFIX
        no_early = [d for d in defines if d not in PDL_TRIGGER_EARLY_DEFINES]  # (the twin's one trigger place)
        defines = _renamed(no_early, "EXDWPW6", spec, PDL_TRIGGER_EXIT_DEFINES)
    if stamp:
        defines.append(f"-DEXDWPW6_STAMP_NAME={spec}_stamp")
    if nvcc is None:
        return Built(spec, None, _defines_head(defines) + source)
    what = f"{spec} (kernels/cblock.cu {' '.join(defines)})"
    stem = spec + "_st" if stamp else spec
    return Built(spec, _compile_cached(src_path, source, stem, defines, arch, nvcc, what), source)


def build_fixed(
    name: str,
    shape: tuple[int, ...],
    arch: str,
    nvcc: str | None,
    epoch: bool = False,
    flags: bool = False,
    early: bool = False,
    staged: bool = False,
    patch: bool = False,
    b0fuse: bool = False,
) -> Built:
    """fuse v24: the kind's kernel file with only build ``name``, its shape fixed (fixed_defines), compiled for
    sm_<arch> (cached on disk by source, options and target; ~1 s). Without nvcc: the source for NVRTC (the defines
    as #define lines in front of the file). ``epoch`` (exdwpw5 only): the epoch twin of fuse v43's flag hand-off
    (EXDWPW5_EPOCH_DEFINES: one more argument), named <spec>EPOCH_SUFFIX; ``flags`` (exdwpw5 only): fuse v44's flag
    twin (EXDWPW5_FLAG_DEFINES: five more), named <spec>FLAG_SUFFIX; ``early`` (exdwpw5 only): fuse v45's early-trigger
    twin (PDL_TRIGGER_EARLY_DEFINES, the same arguments), named <spec>TRIGGER_SUFFIX; ``staged`` (exdwpw5 only): fuse
    v47's staged twin (the early-trigger twin with STAGE_ASYNC_DEFINES too: more shared memory, exdwpw5_smem(staged=
    True); the same arguments), named <spec>STAGE_SUFFIX; ``patch`` (exdwpw5 only): fuse v48's patch twin (the
    early-trigger twin with STAGE_PATCH_DEFINES in place of any STAGE_ASYNC of the process; exdwpw5_smem(staged=False)),
    named <spec>PATCH_SUFFIX; ``b0fuse`` (exdwpw5 only): fuse v49's b0fuse twin (the staged twin with B0FUSE_DEFINES:
    12 more arguments, exdwpw5_b0_smem), named <spec>B0FUSE_SUFFIX."""
    kind = fixed_kind(name)
    if kind is None:
        raise ValueError(f"not a build fuse v24 fixes: {name!r}")
    src_path = KERNEL_DIR / f"{FIXED_KINDS[kind][0]}.cu"
    source = src_path.read_text()
    defines = fixed_defines(name, shape) + process_defines(FIXED_KINDS[kind][0])
    spec = fixed_name(name, shape)
    if epoch or flags or early or staged or patch or b0fuse:
        if kind != "exdwpw5" or epoch + flags + early + staged + patch + b0fuse > 1:
            raise ValueError(
                f"{spec}: only exdwpw5 builds have an epoch, a flag, an early-trigger, a staged, a patch or a b0fuse"
                " twin (one of them)"
            )
        spec += (
            B0FUSE_SUFFIX if b0fuse
            else PATCH_SUFFIX if patch
            else STAGE_SUFFIX if staged
            else TRIGGER_SUFFIX if early
            else EPOCH_SUFFIX if epoch
            else FLAG_SUFFIX
        )  # fmt: skip
        if patch:  # (one STAGE_ASYNC value: the twin's, whatever the process runs)
            defines = [d for d in defines if d not in STAGE_ASYNC_DEFINES]
        twin = (
            PDL_TRIGGER_EARLY_DEFINES + STAGE_ASYNC_DEFINES + B0FUSE_DEFINES if b0fuse
            else PDL_TRIGGER_EARLY_DEFINES + STAGE_PATCH_DEFINES if patch
            else PDL_TRIGGER_EARLY_DEFINES + STAGE_ASYNC_DEFINES if staged
            else PDL_TRIGGER_EARLY_DEFINES if early
            else EXDWPW5_EPOCH_DEFINES if epoch
            else EXDWPW5_FLAG_DEFINES
        )  # fmt: skip
        defines = _renamed(defines, "EXDWPW5", spec, twin)
    if nvcc is None:
        return Built(spec, None, _defines_head(defines) + source)
    what = f"{spec} (kernels/{src_path.name} {' '.join(defines)})"
    return Built(spec, _compile_cached(src_path, source, spec, defines, arch, nvcc, what), source)


def build_all(arch: str) -> dict[str, Built]:
    """Compile every kernel file for sm_<arch> once (cached on disk by source hash), in parallel."""
    nvcc = find_nvcc()
    with ThreadPoolExecutor(max_workers=len(KERNEL_FILES)) as pool:
        built = list(pool.map(lambda n: build_one(n, arch, nvcc), KERNEL_FILES))
    return {b.name: b for b in built}


# -- ptxas report ------------------------------------------------------------------------------------
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for")
_PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")


def parse_ptxas(text: str) -> dict[str, dict[str, int]]:
    """`nvcc -Xptxas -v` output -> {kernel: {stack, spill_stores, spill_loads, registers}}."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = _ENTRY.search(line)
        if m:
            current = m.group(1)
            out[current] = {"stack": 0, "spill_stores": 0, "spill_loads": 0, "registers": 0}
            continue
        if current is None:
            continue
        m = _PROPS.search(line)
        if m:
            out[current].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        m = _REGS.search(line)
        if m:
            out[current]["registers"] = int(m.group(1))
    return out
