// Names of the pubsub channels that cross replicas. Payloads are ids, never bodies.
export const CHANNEL_JOB_POSTED = "provisioner_job_posted";
export const jobLogsChannel = (jobId: string) => `job_logs:${jobId}`;
export const workspaceChannel = (workspaceId: string) => `workspace:${workspaceId}`;
/** Payload on a job's log channel when the job has ended: followers drain and close. */
export const JOB_ENDED = "end";
