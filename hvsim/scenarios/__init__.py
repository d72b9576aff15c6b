"""The bundled scenarios (hvsim.scenario.BUNDLED names them): `tour` (the main demo), `entry-failure`
and `vmfail` (VM entries that fail, explained), `bare-metal` (the processor without VT-x)."""
