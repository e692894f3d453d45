"""seal"""
