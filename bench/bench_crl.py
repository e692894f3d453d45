"""CRLs at scale (issue 12: "a CRL with 10⁵ revoked entries: generation time and size reported; partition CRLs
once one list would pass a configured size"), on SQLite, the demo hierarchy, SM2. Split from bench_scale.py
so it can be re-measured alone (`python -m bench --update bench_crl`: a few minutes, where bench_scale's
HTTP slices and its 10⁶-row PostgreSQL load take far longer on this shared machine).

- One list: 10⁵ revoked certificates of cn-370000-sm2 with partitioning off (every certificate on its key's
  base list), each a real certificate signed by the issuance code with a CSPRNG serial, bulk-loaded through
  ca/store.py `bulk_add` (no event rows: the ledger never sees them); then the CA's next CRL timed through
  ca/crl.py `CRLs.issue` (reads the revoked rows, builds, signs, stores, records `crl.published`). Its DER
  size is reported, and `openssl crl` must parse it and count every entry.
- Partitions: 10⁵ revoked certificates of cn-530000-sm2 issued with a partition size of 10⁴: the real
  assignment (ca/partitions.py) puts each certificate into its key's open partition, writes that
  partition's URL into its distribution point, and opens the next partition (with its first CRL) when one
  is full; bulk-loaded in batches the same way. Then every partition's next CRL is timed, one after the
  other, through the same `CRLs.issue`: reported are the median and the largest per-partition time and
  size, their sum over all partitions, and the number of lists. `openssl crl` parses the largest and must
  show its issuingDistributionPoint.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_scale import prepared_certificates

ONE_LIST_CA = "cn-370000-sm2"
PARTITIONED_CA = "cn-530000-sm2"  # the same kind of CA (regional, SM2) beside it in the demo hierarchy
ENTRIES = 100_000
PARTITION_SIZE = 10_000
BATCH = 5_000


def _load(context: Any, ca_name: str, entries: int, partitioned: bool) -> float:
    """`entries` revoked certificates of `ca_name` bulk-loaded, each batch signed, then written in its own
    transaction (opening a partition writes a CRL: not inside an open bulk transaction). Seconds taken."""
    from ca import store

    revoked = store.BulkRevocation(datetime.now(UTC).replace(microsecond=0), "key_compromise")
    start = time.perf_counter()
    left = entries
    while left:
        batch = list(prepared_certificates(context.ca, ca_name, min(BATCH, left), partitioned=partitioned))
        with context.db.engine.begin() as connection:
            store.bulk_add(connection, batch, revoked)
        left -= len(batch)
    return time.perf_counter() - start


def _timed_issue(context: Any, ca_name: str, scope: Any) -> tuple[float, bytes]:
    from store.models import CertificateAuthority

    with context.ca.crls.mutex, context.db.session() as session:
        ca = session.get(CertificateAuthority, ca_name)
        assert ca is not None
        start = time.perf_counter()
        row = context.ca.crls.issue(session, ca, scope=scope)
        session.commit()
        return time.perf_counter() - start, row.der


def _openssl_text(der: bytes) -> str:
    return subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-noout", "-text"], input=der, capture_output=True, check=True
    ).stdout.decode()


def one_list(context: Any, entries: int) -> dict[str, float]:
    from ca import crl as crls

    load_s = _load(context, ONE_LIST_CA, entries, partitioned=False)
    with context.db.session() as session:
        from store.models import CertificateAuthority

        ca = session.get(CertificateAuthority, ONE_LIST_CA)
        assert ca is not None
        scope = crls.scopes(session, ca)[0]
    seconds, der = _timed_issue(context, ONE_LIST_CA, scope)
    listed = _openssl_text(der).count("Serial Number:")
    if listed < entries:
        raise RuntimeError(f"openssl lists {listed} revoked serials, not ≥ {entries}")
    return {
        "crl_1e5_generation_s": seconds,
        "crl_1e5_der_bytes": float(len(der)),
        "crl_1e5_entries": float(listed),
        "crl_1e5_bulk_load_s": load_s,
    }


def partitions(context: Any, entries: int, size: int) -> dict[str, float]:
    from ca import crl as crls
    from store.models import CertificateAuthority

    context.ca.partitions.size = size
    load_s = _load(context, PARTITIONED_CA, entries, partitioned=True)
    with context.db.session() as session:
        ca = session.get(CertificateAuthority, PARTITIONED_CA)
        assert ca is not None
        key = crls.scopes(session, ca)[0]
        every = [key, *crls.partitions(session, PARTITIONED_CA, key)]
    times, sizes, ders = [], [], []
    for scope in every:
        seconds, der = _timed_issue(context, PARTITIONED_CA, scope)
        times.append(seconds)
        sizes.append(len(der))
        ders.append(der)
    largest = ders[sizes.index(max(sizes))]
    text = _openssl_text(largest)
    if "Issuing Distribution Point: critical" not in text:
        raise RuntimeError("the largest partition CRL shows no critical issuingDistributionPoint")
    listed = sum(_openssl_text(der).count("Serial Number:") for der in ders)
    if listed < entries:
        raise RuntimeError(f"the partition CRLs list {listed} revoked serials, not ≥ {entries}")
    return {
        "crl_partition_size": float(size),
        "crl_partitions": float(len(every)),
        "crl_partition_generation_median_s": statistics.median(times),
        "crl_partition_generation_max_s": max(times),
        "crl_partition_generation_sum_s": sum(times),
        "crl_partition_der_median_bytes": float(statistics.median(sizes)),
        "crl_partition_der_max_bytes": float(max(sizes)),
        "crl_partition_der_sum_bytes": float(sum(sizes)),
        "crl_partition_entries": float(listed),
        "crl_partition_bulk_load_s": load_s,
    }


def run(entries: int = ENTRIES, size: int = PARTITION_SIZE) -> dict[str, float]:
    from api.context import open_context
    from ca.hierarchy import create_demo_hierarchy

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRUSTSEAL_HOME"] = str(Path(tmp))
        os.environ["TRUSTSEAL_CRL_PARTITION_SIZE"] = "0"  # the one-list CA: partitioning off
        context = open_context(create=True)
        try:
            create_demo_hierarchy(context.ca)
            result = one_list(context, entries)
            result.update(partitions(context, entries, size))
        finally:
            context.close()
            os.environ.pop("TRUSTSEAL_CRL_PARTITION_SIZE", None)
        return result


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:40} {value:14.3f}")
