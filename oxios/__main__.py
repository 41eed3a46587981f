from oxios.cli import main

main()
