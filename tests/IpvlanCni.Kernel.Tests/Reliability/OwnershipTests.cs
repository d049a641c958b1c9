using System.Diagnostics;
using System.Text.Json.Nodes;
using IpvlanCni.Interop;
using IpvlanCni.Kernel.Tests.Plugin;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// What the plugin deletes is what its records say it created and the kernel confirms is still that; node-wide state
/// is node-wide; valid names never collide with the store's own files; no test switch reaches the shipped binary.
/// </summary>
public class OwnershipTests : KernelTest
{
    static JsonObject OnMaster(PluginRunner cni, string network, string subnet, string master, string? stateDir = null)
    {
        var config = cni.Config(network, subnet);
        config["master"] = master;
        if (stateDir is not null)
            config["stateDir"] = stateDir;
        return config;
    }

    [Fact]
    public void An_ifname_ending_like_a_temporary_is_an_ordinary_attachment_that_another_del_leaves_alone()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var before = NodeSnapshot.Take(cni);
        var config = OnMaster(cni, "suffix", "10.10.0.0/24", $"{node.MasterName}.300");
        var first = node.AddPod();
        var second = node.AddPod();
        cni.Add(config, first, "c1").Succeeded();
        cni.Add(config, second, "c1", ifName: "eth0.tmp").Succeeded();

        cni.Del(config, first, "c1").Succeeded();
        Assert.True(cni.HasRecord("suffix", "c1", "eth0.tmp"), "the other pod's record went with the first DEL");
        Assert.NotNull(node.Client.TryGetLink($"{node.MasterName}.300"));
        Assert.NotNull(second.Client.TryGetLink("eth0.tmp"));

        cni.Del(config, second, "c1", ifName: "eth0.tmp").Succeeded();
        Assert.Null(node.Client.TryGetLink($"{node.MasterName}.300"));
        NodeSnapshot.Take(cni).AssertSameAs(before, "both DELs");
    }

    [Theory]
    [InlineData(236)]
    [InlineData(255)]
    public void Container_ids_up_to_255_characters_work_end_to_end(int length)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = Residue.FullConfig(cni, "longid");
        var before = NodeSnapshot.Take(cni, pod);
        string id = "c" + new string('7', length - 1);
        string sibling = "c" + new string('7', length - 2) + "8";
        var added = cni.Add(config, pod, id).Succeeded("ADD of a long ID");
        var other = node.AddPod();
        cni.Add(config, other, sibling).Succeeded("ADD of a sibling long ID");
        cni.Check(config, pod, id, added).Succeeded("CHECK of a long ID");
        Assert.All(Directory.GetFiles($"{cni.StateDir}/attachments/longid"), f => Assert.True(Path.GetFileName(f).Length <= 255, f));
        cni.Del(config, other, sibling).Succeeded();
        cni.Del(config, pod, id).Succeeded("DEL of a long ID");
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD, CHECK and DEL of a long container ID");
    }

    [Fact]
    public void The_shipped_binary_ignores_every_fault_variable_and_the_test_build_obeys_them()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("faults", "10.10.0.0/24");
        var before = NodeSnapshot.Take(cni, pod);
        foreach (string step in IpvlanCni.Plugin.FaultPoints.AddSteps)
        {
            foreach (string fault in new[] { $"{step}:crash", $"{step}:fail" })
            {
                var env = CniRuntime.Environment("ADD", "c1", pod.Path, "eth0");
                env[CniRuntime.FaultVariable] = fault;
                env["IPVLAN_CNI_FAULTS"] = "1";
                var added = cni.RunRaw(env, config.ToJsonString(), plugin: CniRuntime.PluginPath);
                added.Succeeded($"the shipped binary with {CniRuntime.FaultVariable}={fault}");
                cni.Del(config, pod, "c1").Succeeded();
            }
        }
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD and DEL with fault variables set");
        // The same request to the test build does fail: the variable is real, only the shipped binary lacks it.
        var faulty = cni.Add(config, pod, "c1", env: new Dictionary<string, string> { [CniRuntime.FaultVariable] = "recorded:fail" });
        Assert.NotEqual(0, faulty.ExitCode);
        Assert.Contains("injected fault", faulty.ErrorMessage);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "the test build's rolled-back ADD");
    }

    [Fact]
    public void Waiting_for_the_node_lock_has_a_deadline_then_code_11()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var second = node.AddPod();
        var config = cni.Config("locked", "10.10.0.0/24");
        config["timeouts"] = new JsonObject { ["lock"] = 1 };
        var initial = NodeSnapshot.Take(cni, pod, second);
        cni.Add(config, pod, "c0").Succeeded(); // creates the node's folder and lock
        var before = NodeSnapshot.Take(cni, pod, second);

        using (var lockFile = Libc.Open($"{cni.NodeStateDir}/lock", Libc.O_RDONLY))
        using (FileLock.TryAcquire(lockFile, TimeSpan.FromSeconds(5)) ?? throw new InvalidOperationException("could not take the node lock"))
        {
            var clock = Stopwatch.StartNew();
            var refused = cni.Add(config, second, "c1");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"ADD waited {clock.Elapsed}");
            Assert.Contains("try again later", refused.FailedWith(11));
            NodeSnapshot.Take(cni, pod, second).AssertSameAs(before, "an ADD refused for a held lock");
            // DEL gives the addresses back before it needs the node lock; its record stays for the DEL the runtime retries.
            Assert.Equal(11, cni.Del(config, pod, "c0").ErrorCode);
            Assert.True(cni.HasRecord("locked", "c0", "eth0"), "the refused DEL removed the record");
        }
        cni.Add(config, second, "c1").Succeeded("ADD once the lock is free");
        cni.Del(config, second, "c1").Succeeded();
        cni.Del(config, pod, "c0").Succeeded("the retried DEL");
        NodeSnapshot.Take(cni, pod, second).AssertSameAs(initial, "every DEL done");
    }

    [Fact]
    public void Two_networks_with_different_state_dirs_share_a_vlan_master_until_the_last_pod_of_either()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        string vlan = $"{node.MasterName}.200";
        var a = OnMaster(cni, "neta", "10.20.0.0/24", vlan, $"/tmp/{node.Name}/state-a");
        var b = OnMaster(cni, "netb", "10.21.0.0/24", vlan, $"/tmp/{node.Name}/state-b");
        var podA = node.AddPod();
        var podB1 = node.AddPod();
        var podB2 = node.AddPod();
        var before = NodeSnapshot.Take(cni);

        cni.Add(a, podA, "a1").Succeeded();
        var b1 = cni.Add(b, podB1, "b1").Succeeded();
        var b2 = cni.Add(b, podB2, "b2").Succeeded();
        cni.Del(a, podA, "a1").Succeeded("the last DEL of network a");

        Assert.NotNull(node.Client.TryGetLink(vlan));
        Assert.True(Programs.Ping(podB1.Namespace, b2.Address()), "network b's pods no longer reach each other after network a's last DEL");
        cni.Check(b, podB1, "b1", b1).Succeeded("CHECK of network b's pod");

        cni.Del(b, podB1, "b1").Succeeded();
        Assert.NotNull(node.Client.TryGetLink(vlan));
        cni.Del(b, podB2, "b2").Succeeded();
        Assert.Null(node.Client.TryGetLink(vlan));
        NodeSnapshot.Take(cni).AssertSameAs(before, "both networks' last DEL");
    }

    [Fact]
    public void Del_leaves_a_host_link_that_took_a_recorded_name_after_the_plugin_lost_it()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        string vlan = $"{node.MasterName}.400";
        var config = OnMaster(cni, "renamed", "10.10.0.0/24", vlan);
        config["hostAccess"] = new JsonObject { ["addresses"] = new JsonArray("10.10.0.1"), ["interface"] = "hostside9" };
        var pod = node.AddPod();
        cni.Add(config, pod, "c1").Succeeded();

        // Someone else removes the VLAN (its slaves go with it) and puts their own links under both names.
        node.Client.DeleteLink(node.Client.GetLink(vlan).Index);
        node.Client.CreateLink(new DummyLinkSpec(vlan));
        node.Client.CreateLink(new DummyLinkSpec("hostside9"));
        cni.Del(config, pod, "c1").Succeeded();

        Assert.Equal("dummy", node.Client.TryGetLink(vlan)?.Kind);
        Assert.Equal("dummy", node.Client.TryGetLink("hostside9")?.Kind);
        Assert.False(cni.HasRecord("renamed", "c1"));
    }

    [Fact]
    public void Del_without_a_record_after_a_refused_add_leaves_the_pods_own_link()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("refused", "10.10.0.0/24");
        pod.Client.CreateLink(new DummyLinkSpec("eth0"));
        Assert.Equal(104, cni.Add(config, pod, "c1").ErrorCode);
        cni.Del(config, pod, "c1").Succeeded();
        Assert.Equal("dummy", pod.Client.TryGetLink("eth0")?.Kind);
    }

    /// <summary>
    /// A delegated IPAM plugin that records its environment: each of its calls (ADD, the rollback's DEL, GC's DEL of a
    /// stale attachment) gets CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH as the spec says.
    /// </summary>
    [Fact]
    public void Delegated_ipam_gets_the_specs_environment_in_every_call_gc_and_rollback_included()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        string bin = $"/tmp/{node.Name}/bin", log = $"/tmp/{node.Name}/ipam-env.log";
        Directory.CreateDirectory(bin);
        // host-local ignores ipam.type, so under another name it stands in for any delegated IPAM plugin; Debian's
        // predates CNI 1.1.0 (no GC, and it refuses the version), so the wrapper answers GC and relabels the version.
        File.WriteAllText($"{bin}/env-ipam", $$"""
            #!/bin/sh
            echo "$CNI_COMMAND|$CNI_CONTAINERID|$CNI_NETNS|$CNI_IFNAME|$CNI_PATH" >> {{log}}
            [ "$CNI_COMMAND" = GC ] && exit 0
            sed 's/"cniVersion":"1.1.0"/"cniVersion":"1.0.0"/' | /usr/lib/cni/host-local
            """ + "\n");
        File.SetUnixFileMode($"{bin}/env-ipam", (UnixFileMode)0b111_101_101);
        var config = cni.Config("delegated", "10.10.0.0/24");
        config["ipam"]!["type"] = "env-ipam";
        var env = new Dictionary<string, string> { ["CNI_PATH"] = $"{bin}:{CniRuntime.CniPath}" };
        var pod = node.AddPod();

        // Rollback: the test build fails ADD after the reservation (a delegated IPAM is asked once the pod's link
        // exists, so "addresses-reserved" is the first point after it); the rollback's DEL must name the attachment.
        var failed = cni.Add(config, pod, "c1", env: new Dictionary<string, string>(env) { [CniRuntime.FaultVariable] = "addresses-reserved:fail" });
        Assert.NotEqual(0, failed.ExitCode);
        cni.Add(config, pod, "c2", env: env).Succeeded();
        cni.Run("GC", GcList(config), "", "", "", env).Succeeded("GC");

        var lines = File.ReadAllLines(log);
        string cniPath = env["CNI_PATH"];
        Assert.Contains($"ADD|c1|{pod.Path}|eth0|{cniPath}", lines);
        Assert.Contains($"DEL|c1|{pod.Path}|eth0|{cniPath}", lines);   // the rollback
        Assert.Contains($"ADD|c2|{pod.Path}|eth0|{cniPath}", lines);
        Assert.Contains($"DEL|c2|{pod.Path}|eth0|{cniPath}", lines);   // GC's release of the stale attachment
        Assert.False(cni.HasRecord("delegated", "c2"), "GC left the stale record");
        Assert.DoesNotContain(Directory.GetFiles($"{cni.DataDir}/delegated"), f => System.Net.IPAddress.TryParse(Path.GetFileName(f), out _));
    }

    /// <summary>
    /// The kernel hands a freed nsfs inode to the next namespace: a DEL that arrives after its pod died, when the path
    /// names a new pod's namespace with that inode, must tell them apart by the namespace cookie and leave the new
    /// pod's link (an ipvlan slave of the same master, under the same name).
    /// </summary>
    [Fact]
    public void A_late_del_whose_netns_path_now_holds_a_new_namespace_with_the_same_inode_leaves_the_new_pods_link()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("reuse", "10.10.0.0/24");
        string name = $"{node.Name}-reuse";
        var dead = NetNamespace.CreateNamed(name);
        ulong inode = dead.Inode;
        cni.Run("ADD", config, "old", dead.Path, "eth0").Succeeded("ADD of the pod that dies");
        // The pod dies: its namespace goes, its link with it; the runtime's DEL has not come yet.
        dead.Dispose();
        NetNamespace.DeleteNamed(name);

        // New namespaces until one gets the freed inode (the kernel frees it asynchronously; ids are lowest-first).
        var held = new List<NetNamespace>();
        NetNamespace? reborn = null;
        try
        {
            for (int i = 0; i < 400 && reborn is null; i++)
            {
                var candidate = NetNamespace.CreateNamed($"{node.Name}-r{i}");
                if (candidate.Inode == inode)
                    reborn = candidate;
                else
                {
                    held.Add(candidate);
                    if (i % 20 == 19)
                        Thread.Sleep(50);
                }
            }
        }
        finally
        {
            foreach (var ns in held)
            {
                ns.Dispose();
                NetNamespace.DeleteNamed(Path.GetFileName(ns.Path));
            }
        }
        Assert.True(reborn is not null, $"no new namespace got the freed inode {inode} in 400 tries: the test cannot show the reuse");
        string rebornName = Path.GetFileName(reborn.Path);
        try
        {
            // The runtime's path names the new namespace now (a bind mount at the same place).
            File.WriteAllBytes($"{NetNamespace.NamedDirectory}/{name}", []);
            Libc.BindMount(reborn.Path, $"{NetNamespace.NamedDirectory}/{name}");
            using var same = NetNamespace.Open($"/run/netns/{name}");
            Assert.Equal((dead.Device, inode), (same.Device, same.Inode));
            cni.Run("ADD", config, "new", same.Path, "eth0").Succeeded("ADD of the new pod");
            using var client = RouteClient.OpenIn(same);
            var link = client.GetLink("eth0");

            cni.Run("DEL", config, "old", same.Path, "eth0").Succeeded("the dead pod's late DEL");
            Assert.Equal(link.Index, client.TryGetLink("eth0")?.Index);
            Assert.False(cni.HasRecord("reuse", "old"), "the late DEL left its record");
            Assert.True(cni.HasRecord("reuse", "new"));
            cni.Run("DEL", config, "new", same.Path, "eth0").Succeeded();
            Assert.Null(client.TryGetLink("eth0"));
        }
        finally
        {
            NetNamespace.DeleteNamed(name);
            reborn.Dispose();
            NetNamespace.DeleteNamed(rebornName);
        }
    }

    /// <summary>A delegated IPAM plugin: host-local behind a wrapper that first runs <paramref name="before"/> (a shell line).</summary>
    static (JsonObject Config, Dictionary<string, string> Env) SlowDelegate(PluginRunner cni, string network, string subnet, string before)
    {
        string bin = $"/tmp/{cni.Node.Name}/bin-{network}";
        Directory.CreateDirectory(bin);
        File.WriteAllText($"{bin}/slow-ipam", $$"""
            #!/bin/sh
            {{before}}
            [ "$CNI_COMMAND" = GC ] && exit 0
            sed 's/"cniVersion":"1.1.0"/"cniVersion":"1.0.0"/' | /usr/lib/cni/host-local
            """ + "\n");
        File.SetUnixFileMode($"{bin}/slow-ipam", (UnixFileMode)0b111_101_101);
        var config = cni.Config(network, subnet);
        config["ipam"]!["type"] = "slow-ipam";
        return (config, new Dictionary<string, string> { ["CNI_PATH"] = $"{bin}:{CniRuntime.CniPath}" });
    }

    /// <summary>
    /// IPAM runs outside the node lock (under the attachment's own lock only): a delegated IPAM plugin that takes 6 s,
    /// in ADD and in DEL, holds up no other container's ADD or DEL.
    /// </summary>
    [Fact]
    public async Task A_slow_delegated_ipam_holds_up_no_other_containers_add_or_del()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var (slow, env) = SlowDelegate(cni, "slowipam", "10.10.0.0/24", "sleep 6");
        var other = cni.Config("quick", "10.10.1.0/24");
        var slowPod = node.AddPod();
        var quickPod = node.AddPod();
        cni.Add(other, quickPod, "warm").Succeeded();
        cni.Del(other, quickPod, "warm").Succeeded();
        var before = NodeSnapshot.Take(cni, slowPod, quickPod);

        foreach (string command in new[] { "ADD", "DEL" })
        {
            var clock = Stopwatch.StartNew();
            var slowCall = Task.Run(() => cni.Run(command, slow, "s1", slowPod.Path, "eth0", env));
            await Task.Delay(1000); // the delegate is running now
            var started = Stopwatch.StartNew();
            var quickCall = command == "ADD" ? cni.Add(other, quickPod, "q1") : cni.Del(other, quickPod, "q1");
            var quickTime = started.Elapsed;
            (await slowCall).Succeeded($"the slow delegate's {command}");
            var slowTime = clock.Elapsed;
            quickCall.Succeeded($"the other container's {command}");
            Assert.True(slowTime > TimeSpan.FromSeconds(5.5), $"the slow {command} took only {slowTime}: its delegate did not run");
            Assert.True(quickTime < TimeSpan.FromSeconds(4), $"the other container's {command} took {quickTime}: it waited for the delegate");
        }
        Assert.Null(slowPod.Client.TryGetLink("eth0"));
        NodeSnapshot.Take(cni, slowPod, quickPod).AssertSameAs(before, "ADD and DEL beside a slow delegate");
    }

    /// <summary>
    /// What our own attack did to the first try at IPAM outside the node lock: while a slow delegate answers an ADD,
    /// the runtime gives up and sends DEL, then ADD again, for the same attachment. Each waits for the attachment's
    /// lock, so they run one after the other in some order, and whichever comes last decides: either the pod is
    /// attached with the one address the store holds for it, record and all, or nothing of it is left.
    /// </summary>
    [Fact]
    public async Task A_del_and_a_re_add_during_a_slow_ipam_add_of_the_same_attachment_leave_one_consistent_outcome()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var (slow, env) = SlowDelegate(cni, "racing", "10.10.0.0/24", "[ \"$CNI_COMMAND\" = ADD ] && sleep 3");
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);

        var first = Task.Run(() => cni.Run("ADD", slow, "r1", pod.Path, "eth0", env));
        await Task.Delay(1000);
        var del = Task.Run(() => cni.Run("DEL", slow, "r1", pod.Path, "eth0", env));
        await Task.Delay(300);
        var again = Task.Run(() => cni.Run("ADD", slow, "r1", pod.Path, "eth0", env));
        var calls = await Task.WhenAll(first, del, again);
        calls[0].Succeeded("the first ADD (it held the attachment's lock first)");
        calls[1].Succeeded("the DEL");

        var reserved = Directory.GetFiles($"{cni.DataDir}/racing").Select(Path.GetFileName).Where(f => System.Net.IPAddress.TryParse(f, out _)).ToList();
        if (pod.Client.TryGetLink("eth0") is { } link)
        {
            // DEL ran before the second ADD: the pod is attached, with the address the store holds for it.
            calls[2].Succeeded("the second ADD, after the DEL");
            var held = Assert.Single(pod.Client.ListAddresses(System.Net.Sockets.AddressFamily.InterNetwork, link.Index));
            Assert.Equal([held.Prefix.Address.ToString()], reserved);
            Assert.True(cni.HasRecord("racing", "r1"), "the attached pod has no record");
            cni.Run("DEL", slow, "r1", pod.Path, "eth0", env).Succeeded("the last DEL");
        }
        else
        {
            // The second ADD came before the DEL (and was refused: the attachment existed); the DEL removed it all.
            Assert.NotEqual(0, calls[2].ExitCode);
            Assert.Empty(reserved);
            Assert.False(cni.HasRecord("racing", "r1"), "a record without its pod link");
        }
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "the race and its last DEL");
    }

    /// <summary>
    /// GC takes up the attachment locks killed calls left (a regular file under a lock's name that nobody holds) and
    /// leaves everything else in that folder alone without failing: a FIFO or folder under a lock's name, another name.
    /// </summary>
    [Fact]
    public void Gc_removes_abandoned_attachment_locks_and_leaves_what_is_not_one()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("locks", "10.10.0.0/24");
        var pod = node.AddPod();
        cni.Add(config, pod, "c1").Succeeded(); // creates the node's attachment-locks folder
        cni.Del(config, pod, "c1").Succeeded();
        string folder = $"{cni.NodeStateDir}/attachment-locks";
        string abandoned = $"{folder}/{new string('a', 64)}", fifo = $"{folder}/{new string('b', 64)}", dir = $"{folder}/{new string('c', 64)}", other = $"{folder}/other";
        File.WriteAllBytes(abandoned, []);
        File.WriteAllBytes(other, []);
        Directory.CreateDirectory(dir);
        Assert.Equal(0, Programs.Run(node.Namespace, "/usr/bin/mkfifo", [fifo]).ExitCode);

        cni.Run("GC", GcList(config), "", "", "").Succeeded("GC beside entries that are not locks");
        Assert.False(File.Exists(abandoned), "GC left an abandoned lock");
        Assert.True(File.Exists(other) && Directory.Exists(dir) && File.Exists(fifo), "GC removed something that is not a lock of ours");
        cni.Run("GC", GcList(config), "", "", "").Succeeded("the next GC too");
    }

    /// <summary>A delegate that forks a child which keeps stdout open (as the reference dhcp daemon may) has answered when it exits.</summary>
    [Fact]
    public void A_delegated_ipam_that_leaves_a_child_holding_stdout_answers_add_before_its_deadline()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var (config, env) = SlowDelegate(cni, "daemon", "10.10.0.0/24", "[ \"$CNI_COMMAND\" = ADD ] && sleep 30 &");
        config["timeouts"] = new JsonObject { ["ipam"] = 10 };
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);
        var clock = Stopwatch.StartNew();
        var added = cni.Run("ADD", config, "d1", pod.Path, "eth0", env).Succeeded("ADD through a daemonizing delegate");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"ADD took {clock.Elapsed}: it waited for the daemon's stdout");
        Assert.Contains("10.10.0.", added.StdOut);
        Assert.NotNull(pod.Client.TryGetLink("eth0"));
        cni.Run("DEL", config, "d1", pod.Path, "eth0", env).Succeeded();
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD and DEL through a daemonizing delegate");
    }

    static JsonObject GcList(JsonObject config)
    {
        var copy = config.DeepClone().AsObject();
        copy["cni.dev/valid-attachments"] = new JsonArray();
        return copy;
    }
}
