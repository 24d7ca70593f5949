"""Every measured speed choice of tinyface, with the machine and the measurement it came from.

These are choices a faster machine could make differently: re-measure before
changing one (``bench/ab.py`` for end-to-end speed, ``bench/layers.py`` for one
layer).  What follows from the target CPU stays derived where it is used (the
vector width and register count in ``kernels.simd``, the tile widths in
``kernels.gemm.tile_vectors`` and ``kernels.conv.WINDOW_VECTORS``), and so do
the block sizes fixed so that every target computes the same bits (the GEMM's
16-column blocks, the depthwise's 16-channel blocks, top-k's 16 lanes: see
their modules).  Two measured choices live elsewhere: the weight of 3 on a
depthwise conv's multiply-adds in ``graph.ops.Conv.work`` (what
``PARALLEL_MIN_MACS`` is compared with; the graph package imports no kernel
module), and the face detector's defaults (``face.detection``: ``MAX_SIDE``,
the thresholds), which trade recall for speed and are options of the API.

The machines: "Zen 4" is the 2-core AMD EPYC VM with AVX-512 of the sessions
of 2026-11-25 (docs/performance.md: the lab notebook), "Zen 3" the 2-core AMD
EPYC VM with AVX2 + FMA and no AVX-512 of 2026-12-01, "Zen 5" the 2-core AMD EPYC
VM (family 26: AVX-512, AVX-512 VNNI) of 2026-12-02's eighth session.  Each entry names the
commit whose message holds the measurement.  Times are medians of runs on a
shared machine: rough.

This module lives in ``kernels/`` because the kernels read some of these
constants when they compile: the JIT cache's stamp covers every file here
(``tinyface.jit_cache``), so changing one recompiles the kernels.
"""
MiB = 2**20

# --- the GEMM (kernels/gemm.py) ---------------------------------------------------

# Rows of a register tile (pixels sharing each loaded vector of weights).  Zen 4,
# 2026-11-25 (d11ea12): the 4-row tile of vectors replaced an 8 x 16 scalar tile, the
# model's GEMM shapes 4-7 % faster alone.  Zen 3, 2026-12-02: on AVX2 a 6 x 16 tile (12
# accumulators, as many as 4 x 24) took 1.08-1.11x the time of 4 x 24 per multiply-add,
# and 4 x 16 1.13-1.19x (docs/performance.md, "Sixth session").
GEMM_ROWS = 4
# Rows per parallel task of a GEMM (kernels/gemm.py ``_gemm``; at least one task per
# thread): each task runs its rows one column panel at a time (``gemm_panels``), so the
# panel's weights are read from L2 once per task.  Zen 3, 2026-12-01 (branch batch1,
# docs/performance.md "Column panels"); other values untried.
GEMM_TASK_ROWS = 64
# At most this many vectors per tile row, whatever the register file allows: the
# 4 x 64 tile was measured on Zen 4 (AVX-512, 4 vectors); wider is untried.
MAX_TILE_VECTORS = 4
# ``accumulate_block`` (the columns the tiles leave, N mod 16) takes this many rows per
# call.  From the first engine (2026-11-25, b2d3891; 4 rows since 4b953b6); since
# 2026-12-02 each of its outputs is the tiles' chain of fused multiply-adds (it was k
# unrolled 4 deep, a different rounding).
LEFTOVER_ROWS = 4
# Reduction rows per task when a GEMM with fewer rows than a tile splits k (MobiFace's
# 1 x 25088 FC), and it splits from 2 * K_CHUNK.  Zen 4, 2026-11-25 (dff7c62): that FC
# alone 1.77 -> 1.50 ms on 1 thread, 1.81 -> 1.26 ms on 2.
K_CHUNK = 2048

# --- the dense conv (kernels/conv.py) ---------------------------------------------

# The direct path (windows read from a padded copy, no patch matrix) takes multiples of
# this many output channels.  Zen 3, 2026-12-01 (1e588ac, docs/kernels.md): with its
# tile the GEMM's widest that divides it (4 x 16 on AVX2) the stem conv ran 1.3x faster
# than with 4 x 24 tiles, which left 16 of every 64 channels to latency-bound 4 x 8 tiles.
DIRECT_CHANNELS = 64

# --- the narrow conv (kernels/narrow.py) ------------------------------------------

# runtime.binders routes dense convs with at most this many output channels to
# narrow.narrow_conv.  Zen 3, 2026-12-01 (4d72ab6, docs/detection.md): every MTCNN
# conv (10-128 channels) and MobileFaceNet's stem (64) ran faster there than on
# kernels.conv (bench/mtcnn_convs.py); wider ones were not measured and stay there.
NARROW_WIDEST = 128
# Output pixels per tile.  Zen 3, 2026-12-01 (e1d8036, docs/kernels.md): 6 pixels x 2
# vectors (15 of AVX2's 16 registers) spilled ten broadcasts per pass; 5 x 2 none, and
# ran 1.4-2.6x faster per conv, alternating.
NARROW_PIXELS = 5

# --- the top-k search (kernels/topk.py, gallery/search.py) ------------------------

# Queries from which the search uses register tiles of TOPK_TILE_ROWS rows x 16
# queries; fewer are memory-bound and read each row once for all queries.  Zen 3,
# 2026-12-01 (4eee3f0, docs/gallery.md): wider tiles (4 x 64) ran at half the speed
# (30-37 against 60-78 GFLOP/s on one core), their accumulators spilling.
TOPK_MANY = 16
TOPK_TILE_ROWS = 4
# Gallery rows per kernel call (32 MB of 128-d float32): the memory beyond the mapped
# file's pages stays k entries per query and thread.
SEARCH_CHUNK_ROWS = 1 << 16
# Searches of at most SEARCH_CODED_QUERIES queries over at least SEARCH_CODED_ROWS rows
# scan the int8 codes (kernels/codes.py) first.  Zen 3, 2026-12-01, loaded (load average
# 4; both paths alternating in one process, docs/gallery.md "Int8 codes first"): codes over
# float32 for one query 1.21 at 5,000 rows, 1.08 at 10,000, 0.54 at 30,000, 0.55 at 100,000;
# at 100,000 rows 0.68 / 0.70 / 0.93 for 2 / 3 / 4 queries; at 1M rows 0.93 for 4, 1.26 for 8.
# Below ~16k rows the float32 rows stay in cache and the conversion costs more than the bytes.
SEARCH_CODED_QUERIES = 3
SEARCH_CODED_ROWS = 16_384
# Rows of int8 codes a search tests against the heaps' roots before it re-scores those that pass.
SEARCH_CODED_BLOCK = 256
# Float32 tables of at most this many bytes are scanned four rows at a time (few queries); larger
# ones, streamed from memory, one row at a time.  Measured on the 2-core Zen 3 VM (32 MB L3), one
# thread, medians of interleaved runs, four rows / one row: 10k x 128 rows (5 MB) 0.84-0.94 for 1
# query and 0.58-0.69 for 4; 100k rows (51 MB) 1.46-1.59 and 1.10-1.23; 1M rows 1.35-1.53 and 1.13-1.19.
SEARCH_CACHED_BYTES = 16 << 20
# Multiply-adds per thread below which a search uses one thread fewer.  Zen 3,
# 2026-12-01 (a502793, measured with bench/gallery.py).
SEARCH_WORK_PER_THREAD = 1 << 22

# --- the first run's compile (tools/warmup.py) -------------------------------------

# Kernels handed to the compile workers first, in this order; then the other parallel
# kernels, then the rest.  The slowest to compile first, so that none is left to start
# last: inclusive CPU s of `bench/compile_times.py verify` on Zen 3, 2026-12-02 (17.6,
# 7.8, 6.7, 5.8; 47 s in all).  Kernels in the folder's stamp recompile when this changes.
COMPILE_FIRST = ("block.inverted_residual", "narrow.narrow_conv", "depthwise.depthwise", "gemm._gemm")
# A command that embeds fewer faces than this (verify: 2) does not compile the deferred
# kernels on its first run (runtime/deferred.py: the fused inverted-residual block, the
# narrow conv where the GEMM can stand in), and runs without them until the cache has them.
# Zen 5, 2026-12-02: the fused kernel is 11.8 of verify's 33.8 CPU s of compiling (20.4 ->
# 15.2 s wall) and saves 0.4-0.7 ms a face at batch 8-32 on one thread, 0.0-0.1 on two: at
# 64 faces, under 0.05 s against 5 s of compiling.
DEFERRED_FACES = 64

# --- the engine (runtime/) ----------------------------------------------------------

# A step with less work than this many GEMM multiply-adds (over the batch) runs on one
# thread.  Zen 4, 2026-11-25 (52a9d2c): batch 1 on 2 threads 7.9 -> 4.2 ms.
PARALLEL_MIN_MACS = 1_000_000
# Images per plan run in ``Model.run``: larger batches run in chunks of this many, so
# each layer's maps stay in cache.  Zen 4, 2026-11-25 (5ccf5ae): batch 32 7.7 -> 6.9
# ms/face on one thread, 3.8 -> 3.5 on two.
RUN_CHUNK = 8
# Scratch per thread of the fused inverted-residual block (runtime/block.py): at most
# the measured machine's L2 (1 MB).  Zen 4, 2026-11-25 (batch 1, one thread, time
# against unfused): 32 KB 1.16, 128 KB 1.07, 256 KB 1.00, 1 MB 0.97, 4 MB 1.02.
BLOCK_SCRATCH_BYTES = 1 * MiB
# The buffer cache (runtime/memory.py): idle schedules kept up to this many bytes and
# this many schedules.  2026-12-01 (18f5071): detection on 60 photo sizes, peak RSS
# 3.55 GB (per-thread pools) -> 0.77 GB.
BUFFER_CACHE_BYTES = 128 * MiB
BUFFER_CACHE_SCHEDULES = 64
# Dropping at least this many bytes at once returns glibc's free pages to the system
# (malloc_trim).  2026-12-01 (eb9b72e): 8 threads with their own shapes, RSS
# plateau 450-520 -> 300-345 MB.
RELEASE_BYTES = 8 * MiB
