"""Where the scripts keep what they install: every cache follows S3C_TOOLS_DIR.

    python3 -m unittest discover -s scripts/lib -p 'test_*.py'
"""

import os
import sys
import unittest
from unittest import mock

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import s3c_bench_servers  # noqa: E402
import s3c_docker  # noqa: E402
import s3c_scripts  # noqa: E402


class ToolsDir(unittest.TestCase):
    def test_every_cache_follows_s3c_tools_dir(self):
        with mock.patch.dict(os.environ, {"S3C_TOOLS_DIR": "/srv/tools"}):
            os.environ.pop("S3C_DOCKER_DIR", None)
            self.assertEqual(s3c_scripts.tools_dir(), "/srv/tools")
            self.assertEqual(s3c_docker.docker_dir(), "/srv/tools/docker")
            self.assertEqual(s3c_bench_servers.tools_dir(), "/srv/tools/bench-tools")

    def test_s3c_docker_dir_still_wins_for_the_engine(self):
        with mock.patch.dict(os.environ, {"S3C_TOOLS_DIR": "/srv/tools",
                                          "S3C_DOCKER_DIR": "/srv/docker"}):
            self.assertEqual(s3c_docker.docker_dir(), "/srv/docker")

    def test_the_default_is_the_home_cache(self):
        with mock.patch.dict(os.environ, {"HOME": "/home/u"}):
            os.environ.pop("S3C_TOOLS_DIR", None)
            os.environ.pop("S3C_DOCKER_DIR", None)
            self.assertEqual(s3c_scripts.tools_dir(), "/home/u/.cache/s3-connector")
            self.assertEqual(s3c_docker.docker_dir(), "/home/u/.cache/s3-connector/docker")


if __name__ == "__main__":
    unittest.main()
