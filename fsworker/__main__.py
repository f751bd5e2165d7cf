from fsworker.cli import main

main()
