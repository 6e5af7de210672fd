// Names of the pubsub channels that cross replicas. Payloads are ids, never bodies.
export const CHANNEL_JOB_POSTED = "provisioner_job_posted";
export const jobLogsChannel = (jobId: string) => `job_logs:${jobId}`;
export const workspaceChannel = (workspaceId: string) => `workspace:${workspaceId}`;
export const agentLogsChannel = (agentId: string) => `agent_logs:${agentId}`;
/** Payload on a log channel when its source will write no more (a job ended, an agent is off). */
export const JOB_ENDED = "end";
/** Payload "<agent id> <peer id>": a peer around that agent connected, changed or left. */
export const CHANNEL_TAILNET = "tailnet";
