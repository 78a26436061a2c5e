from davinci_zoo.cli import run_tool

from .cli import main

run_tool(main)
