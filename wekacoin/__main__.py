from wekacoin.cli.main import main

main()
