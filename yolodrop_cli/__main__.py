from yolodrop_cli.commands import main

main()
