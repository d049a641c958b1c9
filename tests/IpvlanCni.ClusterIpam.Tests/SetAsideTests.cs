using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>ipam.probe's set-aside on the in-memory model: an answered address moves to a conflict attachment in one Txn.</summary>
public class SetAsideTests
{
    const string DualStack = """[[{"subnet":"10.3.0.0/24"}],[{"subnet":"fd03::/64"}]]""";

    [Fact]
    public void AnAnsweredAddressMovesToAConflictAttachmentAndTheNextAddGetsAnother()
    {
        var store = new MemoryKvStore();
        var engine = new ClusterIpamEngine(store);
        var config = Parse("n1", DualStack, "\"blockSize\":4");
        var first = engine.Add(config, Att("n1", "c1"), Soon);
        var answered = first.Addresses[0].Address.Address;

        engine.SetAside(config, Att("n1", "c1"), answered, Soon);
        var allocator = new Allocator(config);
        Assert.False(store.Keys.ContainsKey(allocator.Keys.AttachmentKey("n1", "c1", "eth0")), "the attachment is still there (it would answer the next ADD with the answered address)");
        Assert.False(store.Keys.ContainsKey(first.Addresses[1].Key), "the attachment's IPv6 address was not given back");
        Assert.Contains(answered.ToString(), store.Keys[allocator.ConflictKey("n1", answered)].Value);
        Assert.Contains("ipvlan-cni-probe-conflict-", store.Keys[allocator.Keys.IpKey(answered)].Value);
        // Set aside already: a repeat (a lost answer re-read) changes nothing.
        engine.SetAside(config, Att("n1", "c1"), answered, Soon);

        var second = engine.Add(config, Att("n1", "c1"), Soon);
        Assert.NotEqual(answered, second.Addresses[0].Address.Address);
        Assert.Empty(ClusterView.Read(store, config, Soon).Check());

        // GC keeps the runtime's attachments only: the conflict goes, and the address can be probed again.
        var released = engine.GarbageCollect(config, "n1", [("c1", "eth0")], "boot1", 1_000_000_000, Soon);
        Assert.Equal([allocator.ConflictKey("n1", answered)[allocator.Keys.AttachmentPrefix("n1").Length..].Insert(0, "n1/")], released);
        Assert.False(store.Keys.ContainsKey(allocator.Keys.IpKey(answered)));
    }

    [Fact]
    public void AnAddressTheAttachmentDoesNotHoldIsRefused()
    {
        var engine = new ClusterIpamEngine(new MemoryKvStore());
        var config = Parse("n1", DualStack);
        engine.Add(config, Att("n1", "c1"), Soon);
        var e = Assert.Throws<CniException>(() => engine.SetAside(config, Att("n1", "c1"), System.Net.IPAddress.Parse("10.3.0.200"), Soon));
        Assert.Equal(CniErrorCode.Internal, e.Code);
    }
}
