from monitor.collector import collector_paused

# Importing the command line (asyncio, the site profiles, pydantic: a third of a second of
# CPU) makes no garbage, but the cyclic collector's passes over what it builds are a tenth
# of that; held off, and what was built left to it no more (collector.py). The commands
# hold it off again for their own imports and configuration (`cli.cmd_check`, `cmd_run`).
with collector_paused():
    from monitor.cli import main

raise SystemExit(main())
