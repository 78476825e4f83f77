"""jupyter_kernel_test's protocol conformance suite, run against an installed PySpark kernelspec."""

from __future__ import annotations

import unittest
from typing import Any, ClassVar

import jupyter_kernel_test
import pytest
from conftest import install

pytestmark = pytest.mark.slow


@pytest.fixture(scope="class", autouse=True)
def installed(request: pytest.FixtureRequest, prefix) -> None:
    """KernelTests starts its kernel in setUpClass, by name: install that name first."""
    install(prefix, "--name", "pyspark-conformance", "--replace")


class TestPySparkKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = "pyspark-conformance"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    completion_samples: ClassVar[list[Any]] = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples: ClassVar[list[Any]] = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n"]
    incomplete_code_samples: ClassVar[list[Any]] = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples: ClassVar[list[Any]] = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise ValueError('expected')"
    code_execute_result: ClassVar[list[Any]] = [{"code": "1+2+3", "result": "6"}, {"code": "spark.range(7).count()", "result": "7"}]
    code_display_data: ClassVar[list[Any]] = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>spark</b>'))", "mime": "text/html"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"


if __name__ == "__main__":
    unittest.main()
