"""Print the municipality -> Veilig Thuis table derived from `data/veilig_thuis.yaml`.

    python -m backend.regions.build_vt_table > backend/regions/data/gemeente_vt_2025.csv
"""

from __future__ import annotations

import sys

from backend.regions import data_files
from backend.regions.vt_table import derive_vt_table, load_vt_config, render_vt_table


def main() -> None:
    table = derive_vt_table(data_files.municipality_region_rows(), load_vt_config())
    sys.stdout.write(render_vt_table(table))


if __name__ == "__main__":
    main()
