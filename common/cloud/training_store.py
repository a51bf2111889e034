"""Firestore collections of training: jobs and registered models."""
from __future__ import annotations

from common.cloud import db


def jobs():
    return db.client().collection("training_jobs")


def models():
    return db.client().collection("models")
