import asyncio
import os


async def main(board):
    while True:
        await asyncio.sleep_ms(100)


def run(board):
    os.chdir(board.mount_flash())
    print("zhifu terminal on", board.runtime())
    asyncio.run(main(board))
