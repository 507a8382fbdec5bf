"""The Qt names this plug-in uses, from PyQt5 (Krita 5) or PyQt6 (Krita 6)."""

try:
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication, QMessageBox, QProgressDialog

    WINDOW_MODAL = Qt.WindowModality.WindowModal
except ImportError:
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication, QMessageBox, QProgressDialog

    WINDOW_MODAL = Qt.WindowModal

__all__ = ["QApplication", "QMessageBox", "QProgressDialog", "WINDOW_MODAL"]
