from devicekit.cli import main

main()
