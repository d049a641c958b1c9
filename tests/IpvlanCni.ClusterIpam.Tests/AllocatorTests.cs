using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>The allocator and engine on the in-memory model: no etcd, only Txn compares on create/mod revisions.</summary>
public class AllocatorTests
{
    const string Slash28 = """[[{"subnet":"10.1.0.0/28"}]]"""; // 14 usable, .1 the gateway: capacity 13

    static IEnumerable<string> Owned(MemoryKvStore store) => store.Keys.Keys.Where(k => k.Contains("/ip/"));

    [Fact]
    public void SeveralNodesFillTheRangeToExactlyItsCapacityThenCode101()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var got = new List<string>();
        for (int i = 0; i < 13; i++)
        {
            var config = Parse($"n{i % 3}", Slash28, "\"blockSize\":4");
            got.Add(IpMath.Format(engine.Add(config, Att($"n{i % 3}", $"c{i}"), Soon).Addresses[0].Address.Address));
        }
        Assert.Equal(13, got.Distinct().Count());
        Assert.DoesNotContain("10.1.0.1", got);
        Assert.DoesNotContain("10.1.0.0", got);
        Assert.DoesNotContain("10.1.0.15", got);
        var e = Assert.Throws<CniException>(() => engine.Add(Parse("n4", Slash28, "\"blockSize\":4"), Att("n4", "late"), Soon));
        Assert.Equal(CniErrorCode.AddressesExhausted, e.Code);
        Assert.Equal(13, Owned(store).Count());
    }

    [Fact]
    public void ANodeAllocatesFromItsOwnBlockFirst()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", """[[{"subnet":"10.2.0.0/24"}]]""");
        var first = engine.Add(config, Att("n1", "a"), Soon).Addresses[0].Address.Address;
        var second = engine.Add(config, Att("n1", "b"), Soon).Addresses[0].Address.Address;
        Assert.Equal(Block.Containing(first, 16), Block.Containing(second, 16));
        Assert.Single(store.Keys.Keys, k => k.Contains("/block/"));
        Assert.Single(store.Keys.Keys, k => k.Contains("/aff/n1/"));
    }

    [Fact]
    public void SteadyStateAddIsOneReadAndOneTxn()
    {
        var engine = new ClusterIpamEngine(new MemoryKvStore());
        var config = Parse("n1", """[[{"subnet":"10.2.0.0/16"}]]""");
        engine.Add(config, Att("n1", "warm"), Soon);
        long before = engine.RoundTrips;
        engine.Add(config, Att("n1", "steady"), Soon);
        Assert.Equal(2, engine.RoundTrips - before);
    }

    [Fact]
    public void StrictBlocksStopAtTheNodesBlocksWhileTheRangeHasRoom()
    {
        var engine = new ClusterIpamEngine(new MemoryKvStore());
        var strict = Parse("n1", Slash28, "\"blockSize\":4,\"maxBlocksPerNode\":1,\"strictBlocks\":true");
        var got = new List<string>();
        var e = Assert.Throws<CniException>(() =>
        {
            for (int i = 0; i < 10; i++)
                got.Add(engine.Add(strict, Att("n1", $"c{i}"), Soon).Addresses[0].Address.ToString());
        });
        Assert.Equal(CniErrorCode.AddressesExhausted, e.Code);
        Assert.InRange(got.Count, 2, 4); // one block of 4, less the network, gateway or broadcast it may hold
        // Without strict, the same node borrows everything else.
        var loose = Parse("n1", Slash28, "\"blockSize\":4,\"maxBlocksPerNode\":1");
        for (int i = got.Count; i < 13; i++)
            engine.Add(loose, Att("n1", $"c{i}"), Soon);
        Assert.Equal(CniErrorCode.AddressesExhausted, Assert.Throws<CniException>(() => engine.Add(loose, Att("n1", "x"), Soon)).Code);
    }

    [Fact]
    public void RepeatedAddReturnsTheSameAddressAndAddAfterDelIsFenced()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", Slash28);
        var first = engine.Add(config, Att("n1", "c1"), Soon);
        var again = engine.Add(config, Att("n1", "c1"), Soon);
        Assert.Equal(first.Addresses[0].Address, again.Addresses[0].Address);
        Assert.Single(Owned(store));
        engine.Release(config, Att("n1", "c1"), Soon);
        engine.Release(config, Att("n1", "c1"), Soon); // idempotent
        Assert.Empty(Owned(store));
        var e = Assert.Throws<CniException>(() => engine.Add(config, Att("n1", "c1"), Soon));
        Assert.Equal(CniErrorCode.UnknownContainer, e.Code);
        Assert.Empty(Owned(store));
        // Another interface of the same container is another attachment.
        engine.Add(config, Att("n1", "c1", "net1"), Soon);
        Assert.Single(Owned(store));
    }

    [Fact]
    public void DelBeforeAnyAddFencesTheLateAdd()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", Slash28);
        engine.Release(config, Att("n1", "never"), Soon);
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => engine.Add(config, Att("n1", "never"), Soon)).Code);
    }

    [Fact]
    public void ALostReplyIsResolvedByReadingBackNotByAllocatingTwice()
    {
        var store = new MemoryKvStore { LoseNextReplies = 1 };
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", Slash28);
        var got = engine.Add(config, Att("n1", "c1"), Soon);
        Assert.Single(Owned(store));
        Assert.Equal(IpMath.Format(got.Addresses[0].Address.Address), IpMath.Format(store.Keys.Values.Single(k => k.Key.Contains("/ip/")).Key is var k2 ? new KeyLayout("/ipvlan-cni/ipam/v1", "net1").AddressOf(k2)! : null!));
    }

    [Fact]
    public void FiveConcurrentAddsOfOneContainerGetOneAddress()
    {
        var store = new MemoryKvStore();
        var engines = Enumerable.Range(0, 5).Select(_ => new ClusterIpamEngine(store)).ToList();
        var config = Parse("n1", Slash28);
        using var start = new Barrier(5);
        var results = new string[5];
        var threads = Enumerable.Range(0, 5).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            results[i] = engines[i].Add(config, Att("n1", "c1"), Soon).Addresses[0].Address.ToString();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Single(results.Distinct());
        Assert.Single(Owned(store));
    }

    [Fact]
    public void DualStackIsOneTxnForBothFamilies()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", """[[{"subnet":"10.3.0.0/24"}],[{"subnet":"fd00:3::/120"}]]""");
        var before = store.Commits;
        var got = engine.Add(config, Att("n1", "c1"), Soon);
        Assert.Equal(2, got.Addresses.Count);
        Assert.True(got.Addresses[0].Address.IsIPv4);
        Assert.False(got.Addresses[1].Address.IsIPv4);
        Assert.Equal(1, store.Commits - before);
        // v6 exhausted -> the v4 address is not taken either (all or nothing).
        var tiny = Parse("n1", """[[{"subnet":"10.3.0.0/24"}],[{"subnet":"fd00:4::/126","rangeStart":"fd00:4::2","rangeEnd":"fd00:4::2"}]]""", network: "net2");
        engine.Add(tiny, Att("n1", "c1"), Soon);
        Assert.Equal(CniErrorCode.AddressesExhausted, Assert.Throws<CniException>(() => engine.Add(tiny, Att("n1", "c2"), Soon)).Code);
        Assert.Equal(2, store.Keys.Keys.Count(k => k.Contains("/net2/ip/")));
    }

    [Fact]
    public void StoreDownFailsWithNothingWritten()
    {
        var store = new MemoryKvStore { Down = true };
        var engine = new ClusterIpamEngine(store);
        Assert.Throws<StoreUnavailableException>(() => engine.Add(Parse("n1", Slash28), Att("n1", "c1"), Soon));
        store.Down = false;
        Assert.Empty(store.Keys);
    }

    [Fact]
    public void GcReleasesOnlyThisNodesAttachmentsNotInTheListAndSparesYoungOnes()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var n1 = Parse("n1", Slash28, "\"gcGraceSeconds\":60");
        var n2 = Parse("n2", Slash28, "\"gcGraceSeconds\":60");
        engine.Add(n1, Att("n1", "keep"), Soon);
        engine.Add(n1, Att("n1", "stale"), Soon);
        engine.Add(n1, Att("n1", "young") with { BootMilliseconds = 100_000 }, Soon);
        engine.Add(n1, Att("n1", "otherboot") with { BootId = "boot0", BootMilliseconds = 100_000 }, Soon);
        engine.Add(n2, Att("n2", "theirs"), Soon);
        var released = engine.GarbageCollect(n1, "n1", [("keep", "eth0")], "boot1", 120_000, Soon);
        Assert.Equal(["n1/otherboot/eth0", "n1/stale/eth0"], released.Order(StringComparer.Ordinal));
        Assert.Equal(3, Owned(store).Count());
        // A released attachment is fenced like a DEL.
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => engine.Add(n1, Att("n1", "stale"), Soon)).Code);
    }

    [Fact]
    public void GcReadingBeforeAnAddCommitsDoesNotReleaseIt()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", Slash28, "\"gcGraceSeconds\":0");
        engine.Add(config, Att("n1", "old"), Soon);
        // GC reads, then before its release Txn an ADD of the same attachment lands anew (DEL + re-created record): the
        // release compares the mod revision it read, so it fails and the new allocation stays.
        bool raced = false;
        store.BeforeCommit = () =>
        {
            if (raced)
                return;
            raced = true;
            store.BeforeCommit = null;
            engine.Release(config, Att("n1", "old"), Soon);
            engine.Add(config, Att("n1", "new"), Soon);
        };
        var released = engine.GarbageCollect(config, "n1", [], "boot1", 1_000_000, Soon);
        Assert.Empty(released);
        Assert.Single(Owned(store));
    }

    [Fact]
    public void BadConfigNamesTheField()
    {
        Assert.Contains("ipam.etcdEndpoints", Assert.Throws<CniException>(() => Parse("n1", Slash28, endpoints: "")).Message);
        Assert.Contains("ipam.etcdEndpoints[0]", Assert.Throws<CniException>(() => Parse("n1", Slash28, endpoints: "\"ftp://x\"")).Message);
        Assert.Contains("ipam.node", Assert.Throws<CniException>(() => Parse("a/b", Slash28)).Message);
        Assert.Contains("ipam.blockSize", Assert.Throws<CniException>(() => Parse("n1", Slash28, "\"blockSize\":3")).Message);
        Assert.Contains("ipam.keyPrefix", Assert.Throws<CniException>(() => Parse("n1", Slash28, "\"keyPrefix\":\"x/\"")).Message);
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, Assert.Throws<CniException>(() => Parse("n1", Slash28, "\"blockSize\":3")).Code);
    }

    [Fact]
    public void KeysOfAddressesSortNumericallyAndRoundTrip()
    {
        var keys = new KeyLayout("/p", "n");
        var a = IpMath.FromNumber(9, System.Net.Sockets.AddressFamily.InterNetwork);
        var b = IpMath.FromNumber(10, System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.True(string.CompareOrdinal(keys.IpKey(a), keys.IpKey(b)) < 0);
        Assert.Equal(a, keys.AddressOf(keys.IpKey(a)));
        var v6 = System.Net.IPAddress.Parse("fd00::1:2");
        Assert.Equal(v6, keys.AddressOf(keys.IpKey(v6)));
        var block = Block.Containing(System.Net.IPAddress.Parse("10.0.0.21"), 16);
        Assert.Equal("10.0.0.16_28", block.Id);
        Assert.Equal(block, Block.TryParse(block.Id));
        Assert.Null(Block.TryParse("10.0.0.17_28"));
        var r = keys.BlockAddresses(block);
        Assert.True(r.Covers(keys.IpKey(System.Net.IPAddress.Parse("10.0.0.31"))));
        Assert.False(r.Covers(keys.IpKey(System.Net.IPAddress.Parse("10.0.0.32"))));
    }
}
