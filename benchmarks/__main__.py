"""`make bench`: every benchmark, one after the other."""

import asyncio
import sys

from benchmarks import capacity, digest_build, report_flow

if __name__ == "__main__":
    sys.argv = sys.argv[:1]
    asyncio.run(report_flow.main())
    digest_build.main()
    capacity.main()
