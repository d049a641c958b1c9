namespace IpvlanCni.ClusterIpam;

/// <summary>One key as the store holds it: etcd's create and mod revisions are what compares name.</summary>
public sealed record KeyValue(string Key, string Value, long CreateRevision, long ModRevision);

/// <summary>
/// A key (End null), or the keys in [Key, End) in byte order, as etcd's range_end. A prefix ends in '/', so "a/1/"
/// never matches "a/10/".
/// </summary>
public readonly record struct Read(string Key, string? End)
{
    public static Read One(string key) => new(key, null);
    public static Read Under(string prefix) => new(prefix, PrefixEnd(prefix));
    public static Read Between(string first, string endExclusive) => new(first, endExclusive);

    public bool Covers(string key) => End is null ? key == Key
        : string.CompareOrdinal(key, Key) >= 0 && string.CompareOrdinal(key, End) < 0;

    /// <summary>Whether this read saw every key of [first, end).</summary>
    public bool CoversRange(string first, string end) => End is not null &&
        string.CompareOrdinal(first, Key) >= 0 && string.CompareOrdinal(end, End) <= 0;

    /// <summary>etcd's prefix end: the prefix with its last byte incremented (keys here are ASCII).</summary>
    public static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);
}

/// <summary>Equality on a revision: CreateRevision 0 is "absent", ModRevision r is "as I saw it".</summary>
public readonly record struct Compare(string Key, bool OnCreate, long Revision)
{
    public static Compare Absent(string key) => new(key, true, 0);
    public static Compare Unchanged(KeyValue kv) => new(kv.Key, false, kv.ModRevision);
}

/// <summary>A put (Lease 0: none) or, with Value null, a delete.</summary>
public readonly record struct Write(string Key, string? Value, long Lease = 0)
{
    public static Write Put(string key, string value, long lease = 0) => new(key, value, lease);
    public static Write Delete(string key) => new(key, null);
}

/// <summary>One etcd Txn: If(all compares) Then(writes) Else(reads, to tell "mine already" from "someone else's").</summary>
public sealed record Txn(IReadOnlyList<Compare> Compares, IReadOnlyList<Write> Writes, IReadOnlyList<Read> ElseReads);

/// <summary>What a Txn did: Succeeded, the store revision, and on failure what the Else reads found.</summary>
public sealed record TxnOutcome(bool Succeeded, long Revision, IReadOnlyList<KeyValue> Found);

/// <summary>Everything a set of reads found, at one revision.</summary>
public sealed class Snapshot
{
    readonly Dictionary<string, KeyValue> _keys = new(StringComparer.Ordinal);
    readonly List<Read> _reads = [];

    public Snapshot(long revision, IEnumerable<Read> reads, IEnumerable<KeyValue> found)
    {
        Revision = revision;
        _reads.AddRange(reads);
        foreach (var kv in found)
            _keys[kv.Key] = kv;
    }

    public long Revision { get; }
    public IReadOnlyList<Read> Reads => _reads;

    /// <summary>Whether these reads say anything about <paramref name="key"/> (absent from a covered key is "absent").</summary>
    public bool Covers(string key) => _reads.Any(r => r.Covers(key));
    public bool CoversRange(string first, string end) => _reads.Any(r => r.CoversRange(first, end));
    public bool CoversPrefix(string prefix) => CoversRange(prefix, Read.PrefixEnd(prefix));

    public KeyValue? Get(string key) => _keys.GetValueOrDefault(key);

    public IEnumerable<KeyValue> Under(string prefix) => Between(prefix, Read.PrefixEnd(prefix));

    public IEnumerable<KeyValue> Between(string first, string end) =>
        _keys.Values.Where(kv => string.CompareOrdinal(kv.Key, first) >= 0 && string.CompareOrdinal(kv.Key, end) < 0)
            .OrderBy(kv => kv.Key, StringComparer.Ordinal);

    public int Count => _keys.Count;
}

/// <summary>
/// What the allocator needs from etcd and nothing more: reads at one revision, one Txn, a lease for tombstones.
/// Every method gives up by its deadline (StoreUnavailableException); a Txn that timed out may have committed.
/// </summary>
public interface IKvStore
{
    Snapshot Read(IReadOnlyList<Read> reads, DateTimeOffset deadline);
    TxnOutcome Commit(Txn txn, DateTimeOffset deadline);
    /// <summary>A lease of <paramref name="seconds"/> (0 when the store has none; then tombstones stay until forgotten).</summary>
    long GrantLease(int seconds, DateTimeOffset deadline);
}

/// <summary>The store did not answer in time, or has no quorum: nothing can be decided. The commit state may be unknown.</summary>
public class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The members refused us (a TLS certificate, theirs or ours; the user name or password): waiting would not help, so
/// this comes at once, not at the deadline; the message names the key to fix.
/// </summary>
public sealed class StoreRefusedException(string message, Exception? inner = null) : StoreUnavailableException(message, inner);
