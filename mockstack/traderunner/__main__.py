"""``python -m mockstack.traderunner run`` (the service) or ``python -m mockstack.traderunner <command>``."""

from mockstack.traderunner.cli import main

if __name__ == "__main__":
    main()
