"""Apache Spark's RDD.pipe through `memhost transform --lines`, in local mode.

Run by `cargo xtask spark` (and `cargo xtask test`), which installs pyspark into a virtual
environment under target/tools and passes: MEMHOST MODULE CACHE_DIR.

Each partition of an RDD of lines goes through one `memhost` process, as Spark pipes any
partition through a command; the module cache is shared by the processes (the first compiles,
the rest load). The collected result must be every line transformed, in order.
"""

import os
import shlex
import sys
import time

from pyspark import SparkConf, SparkContext


def main():
    memhost, module, cache = sys.argv[1:4]
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("memhost-pipe")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.driver.host", "127.0.0.1")
    )
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        lines = [f"line {i} of the input, héllo" for i in range(20_000)]
        command = " ".join(
            shlex.quote(part)
            for part in [memhost, "transform", "--lines", "--jobs", "1", "--quiet",
                         "--cache-dir", cache, module]
        )
        start = time.monotonic()
        rdd = sc.parallelize(lines, 8)
        out = rdd.pipe(command, checkCode=True).collect()
        elapsed = time.monotonic() - start
        expected = [line + " Wasm is cool!" for line in lines]
        if out != expected:
            bad = next(i for i, (a, b) in enumerate(zip(out, expected)) if a != b) \
                if len(out) == len(expected) else min(len(out), len(expected))
            print(f"spark: the result differs at line {bad + 1} "
                  f"({len(out)} lines, {len(expected)} expected)", file=sys.stderr)
            sys.exit(1)
        print(f"spark: {len(out)} lines through 8 partitions (one memhost process each) "
              f"in {elapsed:.2f} s, exact", file=sys.stderr)
    finally:
        sc.stop()


if __name__ == "__main__":
    main()
