"""Print the table of interior cells derived from the packaged municipality polygons.

    python -m backend.regions.build_interior_cells > backend/regions/data/interior_cells_2025.csv
"""

from __future__ import annotations

import sys

from backend.regions import interior
from backend.regions.index import RegionIndex


def main() -> None:
    index = RegionIndex.from_packaged_data(with_interior_cells=False)
    sys.stdout.write(interior.render(index.derive_interior_cells()))


if __name__ == "__main__":
    main()
