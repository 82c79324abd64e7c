"""The job queue's policies, shared by the window and ``whisperdesk watch``: nothing lost, nothing twice.

Each policy lives in one module and both front ends call it: how many jobs run at once (:mod:`.workers`),
how a file is queued and what counts as a duplicate (:mod:`.enqueue`), how a job is claimed and run and
what an error does to the queue (:mod:`.run`), the cancel and "back to the queue" flags of running jobs
(:mod:`.cancel`), and the headless worker threads (:mod:`.loop`).
"""
