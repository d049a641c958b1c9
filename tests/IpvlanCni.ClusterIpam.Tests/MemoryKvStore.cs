using IpvlanCni.ClusterIpam;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// An in-memory model of the store: a revisioned map and a Txn that checks create/mod-revision compares atomically.
/// Nothing more of etcd is modelled. Faults: Down (every call fails), LoseNextReply (the Txn applies, its answer is lost).
/// </summary>
sealed class MemoryKvStore : IKvStore
{
    readonly SortedDictionary<string, KeyValue> _keys = new(StringComparer.Ordinal);
    readonly Lock _gate = new();
    long _revision = 1;

    public bool Down { get; set; }
    public int LoseNextReplies { get; set; }
    public int Commits { get; private set; }
    public Action? BeforeCommit { get; set; }

    public IReadOnlyDictionary<string, KeyValue> Keys
    {
        get
        {
            lock (_gate)
                return new Dictionary<string, KeyValue>(_keys);
        }
    }

    public Snapshot Read(IReadOnlyList<Read> reads, DateTimeOffset deadline)
    {
        lock (_gate)
        {
            Check();
            return new Snapshot(_revision, reads, _keys.Values.Where(kv => reads.Any(r => r.Covers(kv.Key))).ToList());
        }
    }

    public TxnOutcome Commit(Txn txn, DateTimeOffset deadline)
    {
        BeforeCommit?.Invoke();
        lock (_gate)
        {
            Check();
            Commits++;
            bool ok = txn.Compares.All(c =>
            {
                var kv = _keys.GetValueOrDefault(c.Key);
                long actual = kv is null ? 0 : c.OnCreate ? kv.CreateRevision : kv.ModRevision;
                return actual == c.Revision;
            });
            if (!ok)
                return new TxnOutcome(false, _revision, [.. _keys.Values.Where(kv => txn.ElseReads.Any(r => r.Covers(kv.Key)))]);
            Assert.Equal(txn.Writes.Count, txn.Writes.Select(w => w.Key).Distinct().Count()); // etcd: one write per key per Txn
            _revision++;
            foreach (var w in txn.Writes)
            {
                if (w.Value is null)
                    _keys.Remove(w.Key);
                else
                    _keys[w.Key] = new KeyValue(w.Key, w.Value, _keys.GetValueOrDefault(w.Key)?.CreateRevision ?? _revision, _revision);
            }
            if (LoseNextReplies > 0)
            {
                LoseNextReplies--;
                throw new StoreUnavailableException("reply lost after commit");
            }
            return new TxnOutcome(true, _revision, []);
        }
    }

    public long GrantLease(int seconds, DateTimeOffset deadline)
    {
        lock (_gate)
        {
            Check();
            return 0;
        }
    }

    void Check()
    {
        if (Down)
            throw new StoreUnavailableException("store down");
    }
}
