from fsd.cli import main

main()
