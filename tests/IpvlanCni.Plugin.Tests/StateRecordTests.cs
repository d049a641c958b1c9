using IpvlanCni.Cni;

namespace IpvlanCni.Plugin.Tests;

/// <summary>The store's records: names derived in one place, foreign files ignored, temporaries apart.</summary>
public sealed class StateRecordTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), $"ipvlan-cni-records-{Guid.NewGuid():N}");
    string StateDir => Path.Combine(_root, "state");
    string NodeRoot => Path.Combine(_root, "node");

    static NetworkName Net(string name) => NetworkName.Parse(name, "name");
    static ContainerId Id(string id) => ContainerId.Parse(id, "CNI_CONTAINERID");
    static InterfaceName If(string name) => InterfaceName.Parse(name, "CNI_IFNAME");

    static AttachmentRecord Record(string network, string id, string ifName) => new()
    {
        Network = Net(network),
        ContainerId = Id(id),
        IfName = If(ifName),
        NetnsPath = "/run/netns/p",
        Master = If("ens10"),
        TemporaryName = If("ipvl0"),
    };

    [Fact]
    public void Null_lists_in_records_read_as_empty()
    {
        using var store = StateStore.Open(StateDir, NodeRoot);
        Directory.CreateDirectory(Path.Combine(StateDir, "attachments", "net1"));
        File.WriteAllText(Path.Combine(StateDir, "attachments", "net1", "c1@eth0"),
            """{"Network":"net1","ContainerId":"c1","IfName":"eth0","NetnsPath":"/run/netns/p","Master":"ens10","TemporaryName":"ipvl0","Addresses":null,"MasqueradedSubnets":null}""");
        store.Save(new MasterRecord { Name = If("ens10") });

        var attachment = Assert.Single(store.ListAttachments(Net("net1")));
        Assert.Empty(attachment.Addresses);
        Assert.Empty(attachment.MasqueradedSubnets);
        Assert.Empty(store.TryLoadAttachment(Net("net1"), Id("c1"), If("eth0"))!.Addresses);
        Assert.Empty(store.TryLoadMaster(If("ens10"))!.HostAddresses);
    }

    [Fact]
    public void An_interface_name_with_a_temporary_like_suffix_is_an_ordinary_record()
    {
        using var store = StateStore.Open(StateDir, NodeRoot);
        store.Save(Record("net1", "c1", "eth0"));
        store.Save(Record("net1", "c1", "eth0.tmp"));
        store.DeleteTemporaries();
        Assert.Equal(2, store.ListAttachments(Net("net1")).Count);
        Assert.NotNull(store.TryLoadAttachment(Net("net1"), Id("c1"), If("eth0.tmp")));
        Assert.Empty(Directory.GetFiles(Path.Combine(StateDir, "tmp")));
    }

    [Fact]
    public void A_255_character_container_id_is_hashed_into_the_name_and_kept_whole_inside()
    {
        using var store = StateStore.Open(StateDir, NodeRoot);
        string id = "a" + new string('b', 254);
        string other = "a" + new string('b', 253) + "c";
        store.Save(Record("net1", id, "eth0"));
        store.Save(Record("net1", other, "eth0"));
        Assert.Equal(id, store.TryLoadAttachment(Net("net1"), Id(id), If("eth0"))!.ContainerId.Value);
        Assert.Equal(other, store.TryLoadAttachment(Net("net1"), Id(other), If("eth0"))!.ContainerId.Value);
        Assert.All(Directory.GetFiles(Path.Combine(StateDir, "attachments", "net1")), f => Assert.True(Path.GetFileName(f).Length <= 255));
        store.Remove(Record("net1", id, "eth0"));
        Assert.Null(store.TryLoadAttachment(Net("net1"), Id(id), If("eth0")));
        Assert.NotNull(store.TryLoadAttachment(Net("net1"), Id(other), If("eth0")));
    }

    [Fact]
    public void A_record_under_another_pairs_name_or_a_symlink_is_not_read()
    {
        using var store = StateStore.Open(StateDir, NodeRoot);
        store.Save(Record("net1", "c1", "eth0"));
        string folder = Path.Combine(StateDir, "attachments", "net1");
        File.Copy(Path.Combine(folder, "c1@eth0"), Path.Combine(folder, "c2@eth0"));
        File.CreateSymbolicLink(Path.Combine(folder, "c3@eth0"), Path.Combine(folder, "c1@eth0"));
        Assert.Null(store.TryLoadAttachment(Net("net1"), Id("c2"), If("eth0")));
        Assert.Null(store.TryLoadAttachment(Net("net1"), Id("c3"), If("eth0")));
        Assert.Single(store.ListAttachments(Net("net1")));
    }

    [Fact]
    public void Users_of_a_master_are_counted_across_state_folders()
    {
        using var a = StateStore.Open(StateDir, NodeRoot);
        using var b = StateStore.Open(Path.Combine(_root, "other-state"), NodeRoot);
        var first = Record("net1", "c1", "eth0");
        var second = Record("net2", "c2", "eth0");
        a.AddUser(first.Master, first);
        b.AddUser(second.Master, second);
        Assert.True(a.HasOtherUsers(first.Master, first));
        b.RemoveUser(second.Master, second);
        Assert.False(a.HasOtherUsers(first.Master, first));
        a.RemoveUser(first.Master, first);
        Assert.False(b.HasOtherUsers(second.Master, second));
    }

    [Theory]
    [InlineData("relative/state")]
    [InlineData("/tmp/../etc")]
    public void A_state_dir_that_is_not_a_plain_absolute_path_is_code_7(string stateDir)
    {
        var e = Assert.Throws<CniException>(() => StateStore.Open(stateDir, NodeRoot));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.StartsWith("stateDir:", e.Message);
    }

    [Fact]
    public void A_state_dir_that_is_a_symlink_or_a_file_is_code_7()
    {
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(Path.Combine(_root, "real"));
        File.CreateSymbolicLink(Path.Combine(_root, "link"), Path.Combine(_root, "real"));
        File.WriteAllText(Path.Combine(_root, "file"), "");
        foreach (string dir in new[] { "link", "link/", "file", "file/sub" })
        {
            var e = Assert.Throws<CniException>(() => StateStore.Open(Path.Combine(_root, dir), NodeRoot));
            Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
            Assert.StartsWith("stateDir:", e.Message);
        }
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_root, "real")));
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }
}
