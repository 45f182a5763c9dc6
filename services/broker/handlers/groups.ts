/** Group membership APIs, delegating to the coordinator's state machine. */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { committedOffsets, groupKey, lastCommitTimes, offsetKey } from './offsets.js';
import { groupExpired } from '../groups/group-expiry.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';

const code = (name: string): number => ErrorCode[name as keyof typeof ErrorCode] ?? ErrorCode.UNKNOWN_SERVER_ERROR;

/** Deletes an empty group and its committed offsets (durable with the next group commit). */
function deleteGroupAndOffsets(b: BrokerContext, id: string): ReturnType<BrokerContext['groups']['deleteGroup']> {
  const verdict = b.groups.deleteGroup(id);
  if (verdict === 'NONE') {
    const changes: Array<[string, unknown]> = committedOffsets(b, id).map(([t, p]) => [offsetKey(id, t, p), null]);
    changes.push([groupKey(id), null]);
    b.store.set(changes);
  }
  return verdict;
}

/**
 * Deletes the groups `offsets.retention.minutes` has run out for (see group-expiry.ts); returns
 * their ids. Run by the broker's maintenance pass.
 */
export function expireGroups(b: BrokerContext, now = Date.now()): string[] {
  const retentionMs = b.options.offsetsRetentionMinutes * 60_000;
  const expired: string[] = [];
  const lastCommits = lastCommitTimes(b);
  for (const g of [...b.groups.groups.values()]) {
    const activity = { members: g.members.size, state: g.state, emptySince: g.emptySince, lastCommitAt: lastCommits.get(g.id) ?? null };
    if (groupExpired(activity, now, retentionMs) && deleteGroupAndOffsets(b, g.id) === 'NONE') expired.push(g.id);
  }
  return expired;
}

export function groupHandlers(b: BrokerContext): Array<[number, Handler]> {
  const join: Handler = async (ctx, req) => {
    const r = await b.groups.join({
      groupId: req.groupId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId ?? null,
      clientId: ctx.clientId,
      clientHost: ctx.clientHost,
      connectionId: ctx.connectionId,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      requireMemberId: ctx.apiVersion >= 4,
    });
    if (r.error === 'NONE') b.store.set([[groupKey(req.groupId), { protocolType: req.protocolType, generation: r.generationId, at: Date.now() }]]);
    return { throttleTimeMs: 0, ...r, errorCode: code(r.error) };
  };

  const sync: Handler = async (ctx, req) => {
    const r = await b.groups.sync(req.groupId, req.memberId, req.generationId, req.assignments, ctx.connectionId);
    return { throttleTimeMs: 0, errorCode: code(r.error), assignment: r.assignment };
  };

  const heartbeat: Handler = (ctx, req) => ({ throttleTimeMs: 0, errorCode: code(b.groups.heartbeat(req.groupId, req.memberId, req.generationId, ctx.connectionId)) });

  const leave: Handler = (ctx, req) => {
    if (ctx.apiVersion < 3) return { throttleTimeMs: 0, errorCode: code(b.groups.leave(req.groupId, [req.memberId])[0]) };
    const members = req.members as Message[];
    const errors = b.groups.leave(req.groupId, members.map((m) => m.memberId));
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      members: members.map((m, i) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: code(errors[i]) })),
    };
  };

  const describe: Handler = (_ctx, req) => ({
    throttleTimeMs: 0,
    groups: (req.groups as string[]).map((id) => {
      const g = b.groups.group(id);
      if (!g) return { errorCode: 0, groupId: id, groupState: 'Dead', protocolType: '', protocolData: '', members: [] };
      return { errorCode: 0, groupId: id, groupState: g.state, protocolType: g.protocolType, protocolData: g.protocol, members: g.describeMembers() };
    }),
  });

  const list: Handler = () => ({
    throttleTimeMs: 0,
    errorCode: 0,
    groups: [...b.groups.groups.values()].map((g) => ({ groupId: g.id, protocolType: g.protocolType })),
  });

  const deleteGroups: Handler = async (_ctx, req) => {
    const results = (req.groupsNames as string[]).map((id) => ({ groupId: id, errorCode: code(deleteGroupAndOffsets(b, id)) }));
    await b.commit.durable();
    return { throttleTimeMs: 0, results };
  };

  return [
    [ApiKey.JoinGroup, join],
    [ApiKey.SyncGroup, sync],
    [ApiKey.Heartbeat, heartbeat],
    [ApiKey.LeaveGroup, leave],
    [ApiKey.DescribeGroups, describe],
    [ApiKey.ListGroups, list],
    [ApiKey.DeleteGroups, deleteGroups],
  ];
}
