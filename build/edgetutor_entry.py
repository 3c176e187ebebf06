"""Entry point of the one-folder build: the `edgetutor` command, frozen.

`freeze_support()` lets `edgetutor bench` start its measuring child processes from the frozen
executable (multiprocessing's spawn re-runs this executable with special arguments).
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from edgetutor.cli import main

    main()
