"""Fakes of provider APIs, written as small Starlette apps."""
