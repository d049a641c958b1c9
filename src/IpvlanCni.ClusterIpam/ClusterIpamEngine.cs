using System.Collections.Concurrent;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>
/// Runs the allocator's decisions against a store: read, decide, commit, and on a lost race read again, bounded by
/// the request's deadline and a jittered backoff. A Txn that timed out is never re-sent blindly: the next round
/// reads the attachment key, which tells whether it committed ("mine already") or not.
/// </summary>
public sealed class ClusterIpamEngine(IKvStore store)
{
    /// <summary>Races lost in a row before giving up (each one means another writer made progress).</summary>
    public const int MaxAttempts = 64;

    /// <summary>This node's blocks as last seen, per network: a hint for the first read (steady state: one read, one Txn).</summary>
    readonly ConcurrentDictionary<string, Block[]> _ownBlocks = new();

    public IKvStore Store { get; } = store;

    /// <summary>
    /// The tombstone lease DELs share, per TTL, with when it was granted (this process's monotonic clock). Reused for
    /// half its TTL, so a steady-state DEL is a read and a commit: a tombstone then lives between half and all of
    /// tombstoneSeconds, and its expiry, early or late, is harmless by design.
    /// </summary>
    readonly ConcurrentDictionary<int, (long Id, long GrantedMs)> _tombstoneLeases = new();

    long TombstoneLease(ClusterIpamConfig config, DateTimeOffset deadline)
    {
        long now = Environment.TickCount64;
        if (_tombstoneLeases.TryGetValue(config.TombstoneSeconds, out var held) && now - held.GrantedMs < config.TombstoneSeconds * 500L)
            return held.Id;
        long id = Count(() => Store.GrantLease(config.TombstoneSeconds, deadline));
        _tombstoneLeases[config.TombstoneSeconds] = (id, now);
        return id;
    }

    /// <summary>A commit naming the shared lease failed: the lease may be gone (revoked, a restored etcd); the next DEL asks for a new one.</summary>
    void ForgetTombstoneLease(ClusterIpamConfig config, long lease)
    {
        if (_tombstoneLeases.TryGetValue(config.TombstoneSeconds, out var held) && held.Id == lease)
            _tombstoneLeases.TryRemove(KeyValuePair.Create(config.TombstoneSeconds, held));
    }

    /// <summary>Round trips to the store since start (reads, Txns, leases): what `make bench` counts per ADD.</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);
    long _roundTrips;

    public AttachmentRecord Add(ClusterIpamConfig config, Attachment a, DateTimeOffset deadline)
    {
        var allocator = new Allocator(config);
        string cacheKey = config.KeyPrefix + "/" + config.Network + "/" + a.Node;
        for (int attempt = 0; ; attempt++)
        {
            var reads = new List<Read>(allocator.FirstReads(a, _ownBlocks.GetValueOrDefault(cacheKey) ?? []));
            var snapshot = ReadAll(reads, deadline);
            while (true)
            {
                var decision = allocator.DecideAdd(a, snapshot);
                switch (decision)
                {
                    case Decision.NeedReads more:
                        if (snapshot.CoversPrefix(allocator.Keys.AffinityPrefix(a.Node)))
                            _ownBlocks[cacheKey] = [.. allocator.OwnBlocks(a.Node, snapshot)];
                        reads.AddRange(more.Reads);
                        snapshot = ReadAll(reads, deadline);
                        continue;
                    case Decision.Existing existing:
                        // Same attachment key, another pod: fail closed rather than hand one pod's address to another.
                        if (existing.Record.Owner is { PodUid.Length: > 0 } owner && a.PodUid.Length > 0 && owner.PodUid != a.PodUid)
                            throw new CniException(CniErrorCode.AlreadyExists,
                                $"ipvlan-cni-ipam: {a.ContainerId}/{a.IfName} on network {config.Network} is held by pod UID {owner.PodUid}, not {a.PodUid}");
                        return existing.Record;
                    case Decision.Fenced:
                        throw new CniException(CniErrorCode.UnknownContainer,
                            $"ipvlan-cni-ipam: {a.ContainerId}/{a.IfName} on network {config.Network} was deleted (DEL came first); a late ADD does not bring it back");
                    case Decision.Exhausted ex:
                        throw new CniException(CniErrorCode.AddressesExhausted,
                            $"ipvlan-cni-ipam: no free address in {ex.Set.Path} ({ex.Set}) of network {config.Network}{(config.StrictBlocks ? $" in the blocks node {a.Node} may hold (strictBlocks)" : "")}");
                    case Decision.Commit commit:
                        _ownBlocks[cacheKey] = [.. allocator.OwnBlocks(a.Node, snapshot), .. commit.Claimed];
                        try
                        {
                            if (Commit(commit.Txn, deadline).Succeeded)
                                return new AttachmentRecord(true, commit.Addresses, a);
                        }
                        catch (StoreUnavailableException) when (DateTimeOffset.UtcNow < deadline)
                        {
                            // Uncertain: it may have committed. The next round's read of the attachment key tells.
                        }
                        break;
                    default:
                        throw new InvalidOperationException(decision.ToString());
                }
                break;
            }
            // Someone else's key won a compare: read again, after a pause that keeps competing nodes apart.
            if (attempt + 1 >= MaxAttempts)
                throw new CniException(CniErrorCode.TryAgainLater, $"ipvlan-cni-ipam: lost {MaxAttempts} races in a row for an address of network {config.Network}; try again");
            Backoff(attempt, deadline);
        }
    }

    public void Release(ClusterIpamConfig config, Attachment a, DateTimeOffset deadline)
    {
        var allocator = new Allocator(config);
        long lease = 0;
        for (int attempt = 0; ; attempt++)
        {
            var snapshot = ReadAll([Read.One(allocator.Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName))], deadline);
            var decision = allocator.DecideRelease(a, snapshot, 0);
            if (decision is Decision.Done)
                return;
            if (lease == 0)
                lease = TombstoneLease(config, deadline);
            decision = allocator.DecideRelease(a, snapshot, lease);
            if (decision is not Decision.Commit commit)
                throw new InvalidOperationException(decision.ToString());
            try
            {
                if (Commit(commit.Txn, deadline).Succeeded)
                    return;
            }
            catch (StoreUnavailableException e) when (DateTimeOffset.UtcNow < deadline && e is not StoreRefusedException)
            {
                // Uncertain: the next read shows a tombstone if it committed. Or etcd refused the lease (gone): ask for a new one.
                ForgetTombstoneLease(config, lease);
                lease = 0;
            }
            if (attempt + 1 >= MaxAttempts)
                throw new CniException(CniErrorCode.TryAgainLater, $"ipvlan-cni-ipam: lost {MaxAttempts} races releasing {a.Id}; try again");
            Backoff(attempt, deadline);
        }
    }

    /// <summary>ipam.probe: sets an answered address aside (see <see cref="Allocator.DecideSetAside"/>); a lost race reads again.</summary>
    public void SetAside(ClusterIpamConfig config, Attachment a, System.Net.IPAddress address, DateTimeOffset deadline)
    {
        var allocator = new Allocator(config);
        for (int attempt = 0; ; attempt++)
        {
            var decision = allocator.DecideSetAside(a, address, ReadAll(allocator.SetAsideReads(a, address), deadline));
            if (decision is Decision.Done)
                return;
            if (decision is not Decision.Commit commit)
                throw new InvalidOperationException(decision.ToString());
            try
            {
                if (Commit(commit.Txn, deadline).Succeeded)
                    return;
            }
            catch (StoreUnavailableException) when (DateTimeOffset.UtcNow < deadline)
            {
                // Uncertain: the next read shows the conflict attachment if it committed.
            }
            if (attempt + 1 >= MaxAttempts)
                throw new CniException(CniErrorCode.TryAgainLater, $"ipvlan-cni-ipam: lost {MaxAttempts} races setting {address} aside; try again");
            Backoff(attempt, deadline);
        }
    }

    /// <summary>
    /// CNI GC: releases this node's live attachments on this network that are not in <paramref name="valid"/>, except
    /// those added within the grace on this boot (an ADD that raced the runtime's list). Each release compares the
    /// attachment's mod revision as read, so a concurrent ADD/DEL of it wins and GC leaves it. Returns the released ids.
    /// </summary>
    public IReadOnlyList<string> GarbageCollect(ClusterIpamConfig config, string node, IReadOnlyCollection<(string ContainerId, string IfName)> valid,
        string bootId, long nowBootMilliseconds, DateTimeOffset deadline)
    {
        var allocator = new Allocator(config);
        string prefix = allocator.Keys.AttachmentPrefix(node);
        var snapshot = ReadAll([Read.Under(prefix)], deadline);
        var keep = valid.Select(v => $"{prefix}{v.ContainerId}/{v.IfName}").ToHashSet(StringComparer.Ordinal);
        var released = new List<string>();
        long lease = 0;
        foreach (var kv in snapshot.Under(prefix))
        {
            if (keep.Contains(kv.Key))
                continue;
            var record = AttachmentRecord.Decode(kv, allocator.Keys);
            if (!record.Live || record.Owner is not { } owner)
                continue;
            if (owner.BootId == bootId && nowBootMilliseconds - owner.BootMilliseconds < (long)config.GcGrace.TotalMilliseconds)
                continue;
            if (lease == 0)
                lease = TombstoneLease(config, deadline);
            try
            {
                if (Commit(allocator.ReleaseTxn(kv, record, Write.Put(kv.Key, AttachmentRecord.Tombstone.Encode(), lease)), deadline).Succeeded)
                    released.Add(owner.Id);
            }
            catch (StoreUnavailableException)
            {
                ForgetTombstoneLease(config, lease);
                throw;
            }
        }
        return released;
    }

    public AttachmentRecord? Get(ClusterIpamConfig config, Attachment a, DateTimeOffset deadline)
    {
        var keys = new KeyLayout(config.KeyPrefix, config.Network);
        string key = keys.AttachmentKey(a.Node, a.ContainerId, a.IfName);
        var kv = ReadAll([Read.One(key)], deadline).Get(key);
        return kv is null ? null : AttachmentRecord.Decode(kv, keys);
    }

    Snapshot ReadAll(IReadOnlyList<Read> reads, DateTimeOffset deadline) => Count(() => Store.Read(reads, deadline));

    TxnOutcome Commit(Txn txn, DateTimeOffset deadline) => Count(() => Store.Commit(txn, deadline));

    T Count<T>(Func<T> call)
    {
        Interlocked.Increment(ref _roundTrips);
        return call();
    }

    /// <summary>Full jitter on an exponential step (2 ms .. 256 ms), never past the deadline.</summary>
    static void Backoff(int attempt, DateTimeOffset deadline)
    {
        int cap = 2 << Math.Min(attempt, 7);
        var pause = TimeSpan.FromMilliseconds(Random.Shared.Next(1, cap + 1));
        var left = deadline - DateTimeOffset.UtcNow;
        if (left <= TimeSpan.Zero)
            throw new StoreUnavailableException("the deadline passed while retrying");
        Thread.Sleep(pause < left ? pause : left);
    }
}
