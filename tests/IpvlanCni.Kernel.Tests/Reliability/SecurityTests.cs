using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// The plugin's files: host-local's modes in the IPAM store, private state, and no write or delete through a symlink
/// planted in either folder. (Hostile names and paths that are not network namespaces are in <see cref="BadInputTests"/>.)
/// </summary>
public class SecurityTests : KernelTest
{
    const string ReferenceHostLocal = "/usr/lib/cni/host-local";

    static string Mode(string path) => Convert.ToString((int)(File.GetAttributes(path).HasFlag(FileAttributes.Directory)
        ? new DirectoryInfo(path).UnixFileMode : new FileInfo(path).UnixFileMode), 8);

    /// <summary>Name -> mode of every entry of a store directory, with addresses replaced by "ADDRESS".</summary>
    static SortedDictionary<string, string> Modes(string dir) => new(
        new DirectoryInfo(dir).EnumerateFileSystemInfos().ToDictionary(
            e => System.Net.IPAddress.TryParse(e.Name, out _) ? "ADDRESS" : e.Name,
            e => Mode(e.FullName)))
    {
        ["."] = Mode(dir),
    };

    [Fact]
    public void Ipam_store_files_have_the_modes_the_reference_host_local_gives_them()
    {
        Assert.True(File.Exists(ReferenceHostLocal), $"{ReferenceHostLocal} is missing ('make deps' installs containernetworking-plugins)");
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("modes", "10.10.0.0/24");
        cni.Add(config, pod, "c1").Succeeded();

        string referenceData = $"/tmp/{node.Name}/reference";
        var referenceConfig = config.DeepClone();
        referenceConfig["ipam"]!["dataDir"] = referenceData;
        referenceConfig["cniVersion"] = "1.0.0"; // Debian's host-local 1.1.1 predates CNI 1.1.0
        var env = CniRuntime.Environment("ADD", "c1", pod.Path, "eth0");
        var reference = cni.RunRaw(env, referenceConfig.ToJsonString(), plugin: ReferenceHostLocal);
        Assert.True(reference.ExitCode == 0, $"reference host-local: {reference}");

        Assert.Equal(Modes($"{referenceData}/modes"), Modes($"{cni.DataDir}/modes"));
        Assert.Equal(Mode(referenceData), Mode(cni.DataDir));
        // The plugin's own state is private: records name namespaces and containers.
        foreach (var entry in new DirectoryInfo(cni.StateDir).EnumerateFileSystemInfos("*", SearchOption.AllDirectories).Append(new DirectoryInfo(cni.StateDir)))
            Assert.True(((int)entry.UnixFileMode & 0b000_111_111) == 0, $"{entry.FullName} is mode {Mode(entry.FullName)}");
    }

    /// <summary>A file outside both folders, and what it looked like: symlinks planted inside point at it.</summary>
    sealed class Victim
    {
        public Victim(string dir)
        {
            Dir = dir;
            Directory.CreateDirectory(dir);
            System.IO.File.WriteAllText(File, "precious\n");
            System.IO.File.SetUnixFileMode(File, (UnixFileMode)0b110_100_100);
            Before = Listing();
        }

        public string Dir { get; }
        public string File => $"{Dir}/victim";
        List<string> Before { get; }

        List<string> Listing() => [.. Directory.EnumerateFileSystemEntries(Dir, "*", SearchOption.AllDirectories).Order()
            .Select(p => $"{p} {Mode(p)} {(System.IO.File.Exists(p) ? System.IO.File.ReadAllText(p) : "dir")}")];

        public void AssertUntouched(string what) => Assert.True(Listing().SequenceEqual(Before),
            $"{what} wrote or deleted outside the plugin's folders:\nbefore: {string.Join("; ", Before)}\nafter: {string.Join("; ", Listing())}");
    }

    static void Link(string path, string target)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.CreateSymbolicLink(path, target);
    }

    [Fact]
    public void Add_del_and_gc_never_write_or_delete_through_symlinks_planted_in_the_store_or_state()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var victim = new Victim($"/tmp/{node.Name}-outside");
        NodeSnapshot.Take(node); // reads (so creates) the nat tables, as every snapshot does
        var config = Residue.FullConfig(cni, "planted");
        string store = $"{cni.DataDir}/planted", attachments = $"{cni.StateDir}/attachments/planted";
        // Each where a write or delete of ours would land: the first candidate address, the round-robin cursor, a
        // leftover temporary, ADD's record and its temporary, a stale record for DEL and GC, the master's record.
        Link($"{store}/10.10.0.2", victim.File);
        Link($"{store}/last_reserved_ip.0", victim.File);
        Link($"{store}/.ipvlan-cni-tmp.1.planted", victim.File);
        Link($"{attachments}/c1@eth0.tmp", victim.File);
        Link($"{attachments}/stale@eth0", victim.File);
        Link($"{cni.StateDir}/masters/{node.MasterName}", victim.File);
        // The temporaries' folders and the node's registry (where the master records and the user marks live).
        Link($"{cni.StateDir}/tmp/{Environment.ProcessId}.1", victim.File);
        Link($"{cni.NodeStateDir}/masters/{node.MasterName}", victim.File);
        Link($"{cni.NodeStateDir}/tmp/1.1", victim.File);
        Link($"{cni.NodeStateDir}/users/{node.MasterName}/planted/c1@eth0", victim.File);

        var pod = node.AddPod();
        var added = cni.Add(config, pod, "c1").Succeeded();
        Assert.NotEqual("10.10.0.2/24", added.Json.GetProperty("ips")[0].GetProperty("address").GetString());
        victim.AssertUntouched("ADD");
        cni.Del(config, pod, "stale").Succeeded();
        cni.Del(config, pod, "c1").Succeeded();
        victim.AssertUntouched("DEL");
        cni.Gc(config).Succeeded();
        victim.AssertUntouched("GC");
    }

    [Fact]
    public void Del_does_not_follow_a_symlinked_state_folder_to_a_record_outside()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("planted", "10.10.0.0/24");
        var pod = node.AddPod();
        // A record that looks like ours, outside the state folder, reached through a planted attachments/ link.
        string outside = $"/tmp/{node.Name}-outside";
        Directory.CreateDirectory($"{outside}/planted");
        File.WriteAllText($"{outside}/planted/c1@eth0",
            new JsonObject { ["Network"] = "planted", ["ContainerId"] = "c1", ["IfName"] = "eth0", ["NetnsPath"] = pod.Path, ["Master"] = node.MasterName, ["TemporaryName"] = "ipvl0000000000" }.ToJsonString());
        var victim = new Victim(outside);
        Directory.CreateDirectory(cni.StateDir);
        File.CreateSymbolicLink($"{cni.StateDir}/attachments", outside);

        cni.Del(config, pod, "c1").Succeeded();
        victim.AssertUntouched("DEL");
        cni.Gc(config).Succeeded();
        victim.AssertUntouched("GC");
        var add = cni.Add(config, pod, "c1");
        Assert.NotEqual(0, add.ExitCode); // refuses to write its record through the link
        victim.AssertUntouched("ADD");
    }

    [Fact]
    public void A_symlinked_lock_or_store_folder_is_refused_not_followed()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("planted", "10.10.0.0/24");
        var pod = node.AddPod();
        var victim = new Victim($"/tmp/{node.Name}-outside");
        Directory.CreateDirectory($"{victim.Dir}/store");
        victim = new Victim(victim.Dir);
        Directory.CreateDirectory(cni.DataDir);
        File.CreateSymbolicLink($"{cni.DataDir}/planted", $"{victim.Dir}/store");

        Assert.NotEqual(0, cni.Add(config, pod, "c1").ExitCode);
        victim.AssertUntouched("ADD into a symlinked IPAM store");
        Assert.Empty(Residue.PodLinks(pod));

        Directory.Delete(cni.DataDir, recursive: true);
        Directory.CreateDirectory(cni.NodeStateDir);
        File.Delete($"{cni.NodeStateDir}/lock");
        File.CreateSymbolicLink($"{cni.NodeStateDir}/lock", victim.File);
        Assert.NotEqual(0, cni.Add(config, pod, "c2").ExitCode);
        victim.AssertUntouched("ADD with a symlinked lock");
        File.Delete($"{cni.NodeStateDir}/lock");
    }
}
