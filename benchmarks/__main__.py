"""`make bench`: every benchmark, one after the other."""

import asyncio
import sys

from benchmarks import broadcast, capacity, digest_build, latency, report_flow

if __name__ == "__main__":
    sys.argv = sys.argv[:1]
    asyncio.run(report_flow.main())
    latency.main()
    broadcast.main()
    digest_build.main()
    capacity.main()
