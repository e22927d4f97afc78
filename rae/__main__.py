from rae.cli import main

main()
