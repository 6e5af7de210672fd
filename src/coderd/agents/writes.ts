// The agents' frequent writes (heartbeats, log lines, stats), each kind group-committed so that
// thousands of agents on one replica cost the database a handful of statements at a time.
import type { AgentStatsReport, Pubsub, Store } from "../../database/index.js";
import { agentLogsChannel, workspaceChannel } from "../pubsub-channels.js";
import { GroupCommit } from "./group-commit.js";

export interface AgentLogLine {
  seq: number;
  created_at: Date;
  source: string;
  level: string;
  output: string;
}

interface Beat {
  agent_id: string;
  workspaceId?: string;
  stats?: AgentStatsReport;
}

export class AgentWrites {
  private readonly beats: GroupCommit<Beat, void>;
  private readonly logBatches: GroupCommit<{ agentId: string; lines: AgentLogLine[] }, number>;

  constructor(store: Store, pubsub: Pubsub) {
    this.beats = new GroupCommit<Beat, void>(async (beats) => {
      // One row per agent: a ping and a stats report in the same group merge, the latest stats win.
      const byAgent = new Map<string, { agent_id: string; stats?: AgentStatsReport }>();
      for (const b of beats) byAgent.set(b.agent_id, { agent_id: b.agent_id, stats: b.stats ?? byAgent.get(b.agent_id)?.stats });
      await store.touchAgents([...byAgent.values()]);
      // Watchers of a workspace see new stats (they come every 30 s, or when sessions change).
      const workspaces = new Set(beats.flatMap((b) => (b.stats && b.workspaceId ? [b.workspaceId] : [])));
      await pubsub.publishMany([...workspaces].map((id) => ({ channel: workspaceChannel(id), payload: "stats" })));
      return beats.map(() => undefined);
    });
    this.logBatches = new GroupCommit(async (batches) => {
      const stored = await store.insertAgentLogsMany(batches.flatMap((b) => b.lines.map((l) => ({ agent_id: b.agentId, ...l }))));
      // Followers of an agent's logs re-read from the database when told something arrived.
      await pubsub.publishMany([...stored.keys()].map((id) => ({ channel: agentLogsChannel(id), payload: "" })));
      // One agent may have several batches in a group: each is told how many lines the group stored for it.
      return batches.map((b) => stored.get(b.agentId) ?? 0);
    }, 200);
  }

  /** Records that the agent is alive now. */
  ping(agentId: string): Promise<void> {
    return this.beats.submit({ agent_id: agentId });
  }

  /** Records the agent's latest stats (which also says it is alive). */
  stats(agentId: string, workspaceId: string, stats: AgentStatsReport): Promise<void> {
    return this.beats.submit({ agent_id: agentId, workspaceId, stats });
  }

  /** Stores the lines (a line re-sent after a reconnect is stored once); resolves with how many were new. */
  logs(agentId: string, lines: AgentLogLine[]): Promise<number> {
    return lines.length ? this.logBatches.submit({ agentId, lines }) : Promise.resolve(0);
  }
}
