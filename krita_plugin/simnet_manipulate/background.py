"""Engine calls off the UI thread: Krita keeps painting while the worker computes, and the
results come back to the UI thread, where documents may be changed."""

from .qt import QEventLoop, QThread, pyqtSignal


class Job(QThread):
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object)
    progressed = pyqtSignal(str, float)

    def __init__(self, work):
        super().__init__()
        self.work = work  # work(progress) -> result; runs on this thread

    def run(self):
        try:
            self.succeeded.emit(self.work(self.progressed.emit))
        except Exception as error:  # handed to the UI thread, which shows it
            self.failed.emit(error)


def run_and_wait(work, on_progress=None):
    """Run `work(progress)` on a thread while the UI thread keeps handling events; return its
    result or raise its exception, here on the UI thread."""
    job, loop, outcome = Job(work), QEventLoop(), {}
    job.succeeded.connect(lambda result: outcome.update(result=result))
    job.failed.connect(lambda error: outcome.update(error=error))
    if on_progress is not None:
        job.progressed.connect(on_progress)
    job.finished.connect(loop.quit)
    job.start()
    loop.exec() if hasattr(loop, "exec") else loop.exec_()
    job.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
