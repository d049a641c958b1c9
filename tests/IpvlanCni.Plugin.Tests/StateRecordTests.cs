namespace IpvlanCni.Plugin.Tests;

/// <summary>Records written by another version or a foreign hand: JSON null for a list reads as an empty list.</summary>
public sealed class StateRecordTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), $"ipvlan-cni-records-{Guid.NewGuid():N}");

    [Fact]
    public void Null_lists_in_records_read_as_empty()
    {
        var store = new StateStore(_root);
        Directory.CreateDirectory(Path.Combine(_root, "attachments", "net1"));
        File.WriteAllText(Path.Combine(_root, "attachments", "net1", "c1@eth0"),
            """{"Network":"net1","ContainerId":"c1","IfName":"eth0","NetnsPath":"/run/netns/p","Master":"ens10","TemporaryName":"ipvl0","Addresses":null,"MasqueradedSubnets":null}""");
        Directory.CreateDirectory(Path.Combine(_root, "masters"));
        File.WriteAllText(Path.Combine(_root, "masters", "ens10"), """{"Name":"ens10","HostAddresses":null}""");

        var attachment = Assert.Single(store.ListAttachments("net1"));
        Assert.Empty(attachment.Addresses);
        Assert.Empty(attachment.MasqueradedSubnets);
        Assert.Empty(store.TryLoadAttachment("net1", "c1", "eth0")!.Addresses);
        Assert.Empty(store.TryLoadMaster("ens10")!.HostAddresses);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
