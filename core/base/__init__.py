"""The ground floor: user-facing errors, paths and atomic writes, file locks, progress
reporting, intervals, the device, background processes. Imports no other core package.
"""
