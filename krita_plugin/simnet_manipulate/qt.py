"""The Qt names this plug-in uses, from PyQt5 (Krita 5) or PyQt6 (Krita 6)."""

try:
    from PyQt6.QtCore import QEventLoop, Qt, QThread, QTimer, pyqtSignal
    from PyQt6.QtGui import QImage, QPixmap
    from PyQt6.QtWidgets import (
        QApplication,
        QButtonGroup,
        QCheckBox,
        QComboBox,
        QDialog,
        QDialogButtonBox,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QMessageBox,
        QProgressDialog,
        QRadioButton,
        QVBoxLayout,
    )

    WINDOW_MODAL = Qt.WindowModality.WindowModal
    RGBA8888 = QImage.Format.Format_RGBA8888
    KEEP_ASPECT = Qt.AspectRatioMode.KeepAspectRatio
    OK, CANCEL = QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.Cancel
    ACCEPT_ROLE, CLOSE = QMessageBox.ButtonRole.AcceptRole, QMessageBox.StandardButton.Close
    CRITICAL = QMessageBox.Icon.Critical
except ImportError:
    from PyQt5.QtCore import QEventLoop, Qt, QThread, QTimer, pyqtSignal
    from PyQt5.QtGui import QImage, QPixmap
    from PyQt5.QtWidgets import (
        QApplication,
        QButtonGroup,
        QCheckBox,
        QComboBox,
        QDialog,
        QDialogButtonBox,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QMessageBox,
        QProgressDialog,
        QRadioButton,
        QVBoxLayout,
    )

    WINDOW_MODAL = Qt.WindowModal
    RGBA8888 = QImage.Format_RGBA8888
    KEEP_ASPECT = Qt.KeepAspectRatio
    OK, CANCEL = QDialogButtonBox.Ok, QDialogButtonBox.Cancel
    ACCEPT_ROLE, CLOSE = QMessageBox.AcceptRole, QMessageBox.Close
    CRITICAL = QMessageBox.Critical

__all__ = [
    "ACCEPT_ROLE",
    "CANCEL",
    "CLOSE",
    "CRITICAL",
    "KEEP_ASPECT",
    "OK",
    "RGBA8888",
    "WINDOW_MODAL",
    "QApplication",
    "QButtonGroup",
    "QCheckBox",
    "QComboBox",
    "QDialog",
    "QDialogButtonBox",
    "QEventLoop",
    "QFormLayout",
    "QHBoxLayout",
    "QImage",
    "QLabel",
    "QMessageBox",
    "QPixmap",
    "QProgressDialog",
    "QRadioButton",
    "QThread",
    "QTimer",
    "QVBoxLayout",
    "pyqtSignal",
]
