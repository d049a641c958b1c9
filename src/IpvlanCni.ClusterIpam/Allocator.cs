using System.Net;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;
using IpvlanCni.Network;

namespace IpvlanCni.ClusterIpam;

/// <summary>What the allocator wants next: more reads, a Txn to commit, or an answer.</summary>
public abstract record Decision
{
    /// <summary>Read these too (with everything read so far, at one revision) and decide again.</summary>
    public sealed record NeedReads(IReadOnlyList<Read> Reads) : Decision;
    /// <summary>Commit this; on success the attachment holds these addresses.</summary>
    public sealed record Commit(Txn Txn, IReadOnlyList<HeldAddress> Addresses, IReadOnlyList<Block> Claimed) : Decision;
    /// <summary>The attachment exists already (a repeated ADD, or our own commit whose answer was lost): its addresses.</summary>
    public sealed record Existing(AttachmentRecord Record) : Decision;
    /// <summary>A DEL came first: this attachment is fenced, a late ADD must not resurrect it.</summary>
    public sealed record Fenced : Decision;
    /// <summary>No free address in a range set (for this node, when blocks are strict).</summary>
    public sealed record Exhausted(AddressRangeSet Set) : Decision;
    /// <summary>Nothing to change (DEL of a deleted attachment).</summary>
    public sealed record Done : Decision;
}

/// <summary>
/// The cluster allocator as a pure function: (ranges, what the store holds) -> the next compare-and-put. It keeps no
/// state; every Txn compares exactly what its decision read: an absent key by create revision 0, a present one by
/// its mod revision. Uniqueness is structural: an address is owned by the one key named after it, created only if absent.
/// </summary>
public sealed class Allocator(ClusterIpamConfig config)
{
    public ClusterIpamConfig Config { get; } = config;
    public KeyLayout Keys { get; } = new(config.KeyPrefix, config.Network);

    /// <summary>The first reads of an ADD: the attachment, this node's blocks and (as far as the caller knows them) their addresses.</summary>
    public IReadOnlyList<Read> FirstReads(Attachment a, IEnumerable<Block> knownOwnBlocks) =>
        [Read.One(Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName)), Read.Under(Keys.AffinityPrefix(a.Node)), .. knownOwnBlocks.Select(Keys.BlockAddresses)];

    /// <summary>This node's blocks as the snapshot shows them (needs the affinity read).</summary>
    public IReadOnlyList<Block> OwnBlocks(string node, Snapshot s) =>
        [.. s.Under(Keys.AffinityPrefix(node)).Select(kv => KeyLayout.BlockOf(kv.Key)).OfType<Block>().Where(b => b.Size == Config.BlockSize)];

    public Decision DecideAdd(Attachment a, Snapshot s)
    {
        string attKey = Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName);
        var missing = new List<Read>();
        if (!s.Covers(attKey))
            missing.Add(Read.One(attKey));
        if (!s.CoversPrefix(Keys.AffinityPrefix(a.Node)))
            missing.Add(Read.Under(Keys.AffinityPrefix(a.Node)));
        if (missing.Count > 0)
            return new Decision.NeedReads(missing);

        if (s.Get(attKey) is { } existing)
        {
            var record = AttachmentRecord.Decode(existing, Keys);
            return record.Live ? new Decision.Existing(record) : new Decision.Fenced();
        }

        var own = OwnBlocks(a.Node, s);
        var unread = own.Select(Keys.BlockAddresses).Where(r => !s.CoversRange(r.Key, r.End!)).ToList();
        if (unread.Count > 0)
            return new Decision.NeedReads(unread);

        var compares = new List<Compare> { Compare.Absent(attKey) };
        var writes = new List<Write>();
        var held = new List<HeldAddress>();
        var claimed = new List<Block>();
        ulong seed = Seed(a.Node);
        foreach (var set in Config.HostLocal.RangeSets)
        {
            var pick = FromBlocks(set, own.Where(b => Intersects(set, b)), s);
            if (pick is null)
            {
                int ownInSet = own.Count(b => Intersects(set, b));
                if (ownInSet < Config.MaxBlocksPerNode)
                {
                    if (!s.CoversPrefix(Keys.BlockPrefix))
                        return new Decision.NeedReads([Read.Under(Keys.BlockPrefix)]);
                    foreach (var block in UnclaimedBlocks(set, s, seed).Where(b => !claimed.Contains(b)))
                    {
                        var range = Keys.BlockAddresses(block);
                        if (!s.CoversRange(range.Key, range.End!))
                            return new Decision.NeedReads([range]);
                        if (FromBlocks(set, [block], s) is { } fresh)
                        {
                            compares.Add(Compare.Absent(Keys.BlockKey(block)));
                            compares.Add(Compare.Absent(Keys.AffinityKey(a.Node, block)));
                            writes.Add(Write.Put(Keys.BlockKey(block), BlockRecord.Encode(a.Node)));
                            writes.Add(Write.Put(Keys.AffinityKey(a.Node, block), ""));
                            claimed.Add(block);
                            pick = fresh;
                            break;
                        }
                    }
                }
            }
            if (pick is null && !Config.StrictBlocks)
            {
                // Borrowing: any free address of the set, wherever it is; the attachment stays this node's.
                if (!s.CoversPrefix(Keys.IpPrefix))
                    return new Decision.NeedReads([Read.Under(Keys.IpPrefix)]);
                pick = Borrow(set, s, seed);
            }
            if (pick is not { } chosen)
                return new Decision.Exhausted(set);
            string ipKey = Keys.IpKey(chosen.Address);
            compares.Add(Compare.Absent(ipKey));
            writes.Add(Write.Put(ipKey, OwnerRecord.Encode(chosen.Address, a)));
            held.Add(new HeldAddress(new IpPrefix(chosen.Address, chosen.Range.Subnet.PrefixLength), chosen.Range.Gateway, ipKey));
        }
        var live = new AttachmentRecord(true, held, a);
        writes.Add(Write.Put(attKey, live.Encode()));
        return new Decision.Commit(new Txn(compares, writes, [Read.One(attKey)]), held, claimed);
    }

    /// <summary>DEL: deletes the attachment's address keys and leaves a tombstone, if the attachment is as read.</summary>
    public Decision DecideRelease(Attachment a, Snapshot s, long tombstoneLease)
    {
        string attKey = Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName);
        if (!s.Covers(attKey))
            return new Decision.NeedReads([Read.One(attKey)]);
        var tomb = Write.Put(attKey, AttachmentRecord.Tombstone.Encode(), tombstoneLease);
        if (s.Get(attKey) is not { } kv)
            return new Decision.Commit(new Txn([Compare.Absent(attKey)], [tomb], [Read.One(attKey)]), [], []);
        var record = AttachmentRecord.Decode(kv, Keys);
        if (!record.Live)
            return new Decision.Done();
        return new Decision.Commit(ReleaseTxn(kv, record, tomb), [], []);
    }

    /// <summary>
    /// The conflict attachment that keeps an address another host on the wire answered for (ipam.probe): an
    /// attachment of this node like any other (shown, checked, released by GC and by the operator), never a pod's.
    /// </summary>
    public const string ConflictContainerPrefix = "ipvlan-cni-probe-conflict-";
    public const string ConflictIfName = "wire";

    public string ConflictKey(string node, IPAddress address) =>
        Keys.AttachmentKey(node, ConflictContainerPrefix + IpMath.Format(address).Replace(':', '_'), ConflictIfName);

    /// <summary>
    /// ipam.probe's "someone answered": in one Txn the address moves to its conflict attachment, and the attachment
    /// (not fenced: its own ADD goes on to ask again) gives back its other addresses and goes. Done when that is so already.
    /// </summary>
    public IReadOnlyList<Read> SetAsideReads(Attachment a, IPAddress address) =>
        [Read.One(Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName)), Read.One(Keys.IpKey(address)), Read.One(ConflictKey(a.Node, address))];

    public Decision DecideSetAside(Attachment a, IPAddress address, Snapshot s)
    {
        string attKey = Keys.AttachmentKey(a.Node, a.ContainerId, a.IfName), ipKey = Keys.IpKey(address), conflictKey = ConflictKey(a.Node, address);
        var missing = SetAsideReads(a, address).Where(r => !s.Covers(r.Key)).ToList();
        if (missing.Count > 0)
            return new Decision.NeedReads(missing);
        var conflict = s.Get(conflictKey) is { } c ? AttachmentRecord.Decode(c, Keys) : null;
        var kv = s.Get(attKey);
        var held = kv is null ? null : AttachmentRecord.Decode(kv, Keys);
        if (held is not { Live: true } || !held.Addresses.Any(h => h.Key == ipKey))
        {
            if (conflict is { Live: true } && conflict.Addresses.Any(h => h.Key == ipKey))
                return new Decision.Done();
            throw new CniException(CniErrorCode.Internal, $"ipvlan-cni-ipam: {IpMath.Format(address)} is not held by {a.Id}");
        }
        var address0 = held.Addresses.First(h => h.Key == ipKey);
        var owner = a with { ContainerId = ConflictContainerPrefix + IpMath.Format(address).Replace(':', '_'), IfName = ConflictIfName, PodNamespace = "", PodName = "", PodUid = "" };
        var compares = new List<Compare> { Compare.Unchanged(kv!), s.Get(conflictKey) is { } old ? Compare.Unchanged(old) : Compare.Absent(conflictKey) };
        if (s.Get(ipKey) is { } ipKv)
            compares.Add(Compare.Unchanged(ipKv));
        var writes = new List<Write>
        {
            Write.Put(conflictKey, new AttachmentRecord(true, [address0], owner).Encode()),
            Write.Put(ipKey, OwnerRecord.Encode(address, owner)),
        };
        writes.AddRange(held.Addresses.Where(h => h.Key != ipKey).Select(h => Write.Delete(h.Key)));
        writes.Add(Write.Delete(attKey));
        return new Decision.Commit(new Txn(compares, writes, [Read.One(attKey), Read.One(conflictKey)]), [], []);
    }

    /// <summary>Releases one attachment as it was read (GC, operator release): its keys go, a tombstone stays.</summary>
    public Txn ReleaseTxn(KeyValue kv, AttachmentRecord record, Write tombstone) =>
        new([Compare.Unchanged(kv)], [.. record.Addresses.Select(h => Write.Delete(h.Key)), tombstone], [Read.One(kv.Key)]);

    readonly record struct Pick(IPAddress Address, AddressRange Range);

    /// <summary>The lowest free address of these blocks inside the set (never a gateway).</summary>
    Pick? FromBlocks(AddressRangeSet set, IEnumerable<Block> blocks, Snapshot s)
    {
        foreach (var block in blocks)
            foreach (var range in set.Ranges)
            {
                var lo = UInt128.Max(block.Base, IpMath.ToNumber(range.Start));
                var hi = UInt128.Min(block.Last, IpMath.ToNumber(range.End));
                for (var n = lo; n <= hi && n >= lo; n++)
                {
                    var ip = IpMath.FromNumber(n, range.Family);
                    if (!ip.Equals(range.Gateway) && s.Get(Keys.IpKey(ip)) is null)
                        return new Pick(ip, range);
                }
            }
        return null;
    }

    static bool Intersects(AddressRangeSet set, Block b) => set.Ranges.Any(r => r.Family == b.Family &&
        IpMath.ToNumber(r.Start) <= b.Last && b.Base <= IpMath.ToNumber(r.End));

    /// <summary>The set's blocks nobody claimed, starting at a node-seeded place so that nodes claiming at once diverge.</summary>
    IEnumerable<Block> UnclaimedBlocks(AddressRangeSet set, Snapshot s, ulong seed)
    {
        var spans = set.Ranges.Select(r => (First: Block.Containing(r.Start, Config.BlockSize), Count: Blocks(r))).ToList();
        UInt128 total = spans.Aggregate(UInt128.Zero, (t, x) => t + x.Count);
        int claimedCount = s.Under(Keys.BlockPrefix).Count();
        UInt128 limit = UInt128.Min(total, (UInt128)claimedCount + 1 + (UInt128)spans.Count);
        UInt128 start = seed % total;
        for (UInt128 i = 0; i < total && i < limit + (UInt128)claimedCount; i++)
        {
            var index = (start + i) % total;
            foreach (var (first, count) in spans)
            {
                if (index >= count)
                {
                    index -= count;
                    continue;
                }
                var block = first with { Base = first.Base + index * (UInt128)Config.BlockSize };
                if (s.Get(Keys.BlockKey(block)) is null)
                    yield return block;
                break;
            }
        }
    }

    UInt128 Blocks(AddressRange r) =>
        (Block.Containing(r.End, Config.BlockSize).Base - Block.Containing(r.Start, Config.BlockSize).Base) / (UInt128)Config.BlockSize + 1;

    /// <summary>Any free address of the set, from a node-seeded place (needs every address key read).</summary>
    Pick? Borrow(AddressRangeSet set, Snapshot s, ulong seed)
    {
        var sizes = set.Ranges.Select(r => IpMath.ToNumber(r.End) - IpMath.ToNumber(r.Start) + 1).ToList();
        UInt128 total = sizes.Aggregate(UInt128.Zero, (t, x) => t + x);
        // At most every taken address and every gateway can be passed before a free one: the walk is bounded.
        UInt128 limit = UInt128.Min(total, (UInt128)s.Under(Keys.IpPrefix).Count() + (UInt128)set.Ranges.Count + 1);
        UInt128 start = seed % total;
        for (UInt128 i = 0; i < limit; i++)
        {
            var index = (start + i) % total;
            for (int r = 0; r < sizes.Count; r++)
            {
                if (index >= sizes[r])
                {
                    index -= sizes[r];
                    continue;
                }
                var range = set.Ranges[r];
                var ip = IpMath.FromNumber(IpMath.ToNumber(range.Start) + index, range.Family);
                if (!ip.Equals(range.Gateway) && s.Get(Keys.IpKey(ip)) is null)
                    return new Pick(ip, range);
                break;
            }
        }
        return null;
    }

    /// <summary>FNV-1a of the node name: where this node starts looking, the same on every run.</summary>
    public static ulong Seed(string node)
    {
        ulong h = 14695981039346656037;
        foreach (char c in node)
            h = (h ^ c) * 1099511628211;
        return h;
    }
}
