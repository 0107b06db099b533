from bot.process.cli import main

main()
