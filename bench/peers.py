#!/usr/bin/env python3
"""Convert a CSV to zstd Parquet with one peer engine, as its documentation recommends for
large files (streaming readers and sinks where the engine has them).

usage: peers.py ENGINE LAYOUT THREADS CSV OUT
  ENGINE   duckdb | pyarrow | polars
  LAYOUT   flat | by-day (Hive-partitioned on the date column)
  THREADS  1 or the number of cores to allow
"""
import os
import sys


def main() -> None:
    engine, layout, threads, csv_path, out = sys.argv[1:6]
    threads = int(threads)
    partitioned = layout == "by-day"
    os.makedirs(out, exist_ok=True)
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        target = out if partitioned else os.path.join(out, "data.parquet")
        partition = ", PARTITION_BY (date)" if partitioned else ""
        con.execute(
            f"COPY (FROM read_csv('{csv_path}')) TO '{target}' "
            f"(FORMAT parquet, COMPRESSION zstd{partition})"
        )
    elif engine == "pyarrow":
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        # The I/O pool keeps its default size: with one I/O thread, a streaming CSV reader
        # feeding write_dataset deadlocks. Single-threaded runs are pinned with taskset.
        pa.set_cpu_count(threads)
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(use_threads=threads > 1, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
        if partitioned:
            ds.write_dataset(
                reader,
                out,
                format="parquet",
                partitioning=["date"],
                partitioning_flavor="hive",
                file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
                use_threads=threads > 1,
                existing_data_behavior="overwrite_or_ignore",
            )
        else:
            with pq.ParquetWriter(os.path.join(out, "data.parquet"), reader.schema,
                                  compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(batch)
    elif engine == "polars":
        import polars as pl

        frame = pl.scan_csv(csv_path)
        if partitioned:
            frame.sink_parquet(pl.PartitionBy(out, key="date"), compression="zstd",
                               mkdir=True)
        else:
            frame.sink_parquet(os.path.join(out, "data.parquet"), compression="zstd")
    else:
        sys.exit(f"unknown engine {engine}")


if __name__ == "__main__":
    main()
