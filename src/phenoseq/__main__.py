from phenoseq.cli import main

main()
