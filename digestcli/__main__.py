"""Start the command line: the `digest` script and `python -m digestcli`.

Starting imports some 100,000 objects that live as long as the process: the garbage collector is
paused while they are made, then told to leave them alone (`gc.freeze`), so that neither the
collections during a command nor the last one at exit walk through them again. That is a tenth of
`digest lint`'s time.
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from digestcli.cli import main as run
    finally:
        gc.freeze()
        gc.enable()
    run()


if __name__ == "__main__":
    main()
