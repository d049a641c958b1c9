// `make demo`: the design note's node, built in the sandbox's own root namespace, pods attached by the published
// plugin exactly as a runtime attaches them, and a reachability matrix measured with real pings (and one TCP
// connection). Exits non-zero when any cell differs from what the row expects.
using System.Diagnostics;
using IpvlanCni.Scenarios;

if (Environment.GetEnvironmentVariable("IPVLANCNI_SANDBOX") != "1")
{
    Console.Error.WriteLine("the demo changes the network of the machine it runs on: run it with `make demo` (inside the sandbox)");
    return 2;
}

var clock = Stopwatch.StartNew();
Console.WriteLine($"""
    ipvlan-cni demo: {CniRuntime.PluginPath}

    node (this sandbox's root namespace)
      ens3   192.168.3.1/24  fd00:0:3::1/64     management NIC, default route  -> outside host 192.168.3.254 (no route to pods)
      ens10                                     business NIC                   -> business peer, VLANs 100 / 200 / 250
        ens10.100   (made by the plugin)        l2 pods  10.100.0.10-99   peer 10.100.0.254  (same subnet)
        ens10.200   10.200.0.1/24 (the node's)  l3 pods  10.200.1.0/24 (+ 10.200.2.0/24)   peer 10.200.0.254 routes 10.200.0.0/16 via 10.200.0.1
        ens10.250   10.250.0.1/24 (the node's)  l3s pods 10.250.1.0/24 (+ 10.250.2.0/24)   peer 10.250.0.254 routes 10.250.0.0/16 via 10.250.0.1
      IPv6 the same: fd00:0:<vlan>:<subnet>::/64. "node" below is the node's primary address 192.168.3.1 / fd00:0:3::1.

    """);

// A failed step (a refused ADD, a missing tool) is reported as what was being done and why, never a stack trace.
string step = "building the node";
IReadOnlyList<Cell> cells;
bool dhcpWorked;
try
{
    using var lab = new Lab(Layout.DesignNote, nodeIsCurrentNamespace: true);
    step = "attaching pods";
    cells = Matrix.Measure(lab, Rows.All, next =>
    {
        step = $"attaching pods: {next}";
        Console.WriteLine($"  {step}");
    });
    Console.WriteLine();
    Console.Write(Matrix.Render(Rows.All, cells));
    Console.WriteLine("""

        yes / no: measured, as the row expects.  YES(!) / NO(!): measured, NOT as expected.  -: no such path in that mode.
        l3 / l3s IPv4 never leaves through another NIC than the master: ipvlan routes it in the node with the master as the
        output interface (IPv6 is routed freely). For pods that need networks behind the node, use l2 with egress "host".
        """);

    // `ipvlan-cni explain` on one failing and one working path: an l3 pod to the node, without and with hostAccess.
    step = "explaining an l3 pod's path to the node";
    var l3 = lab.Layout.Segments.First(s => s.Mode == IpvlanCni.Network.IpvlanMode.L3);
    foreach (var setup in new[] { Setup.Plain, Setup.HostAccess })
    {
        using var deployment = new Deployment(lab, l3, setup, secondNetwork: false);
        string node = lab.NodePrimaryAddress(Family.IPv4).Address.ToString();
        Console.WriteLine($"\n$ ipvlan-cni explain --from {deployment.A.Pod.Path} --to {node}      # {setup.Label}");
        var explained = Programs.Run(lab.Node, CniRuntime.PluginPath, ["explain", "--from", deployment.A.Pod.Path, "--to", node, "--state-dir", lab.StateDir]);
        Console.Write(explained.StdOut + explained.StdErr);
    }
    Console.WriteLine();

    step = "getting a pod's address from DHCP";
    dhcpWorked = DhcpDemo.Run(lab);

    step = "sharing one subnet across three nodes through etcd";
    ClusterIpamDemo.Run();
}
catch (Exception e)
{
    Console.Error.WriteLine($"""

        demo failed while {step}:
          {e.Message.ReplaceLineEndings(Environment.NewLine + "  ")}
        """);
    return 1;
}

var wrong = cells.Where(c => !c.AsExpected).ToList();
foreach (var cell in wrong)
    Console.WriteLine($"UNEXPECTED: {cell}");
Console.WriteLine($"{cells.Count(c => c.Reached is not null)} cells measured in {clock.Elapsed.TotalSeconds:F0} s; " +
    (wrong.Count == 0 ? "all as expected." : $"{wrong.Count} not as expected."));
return wrong.Count == 0 && dhcpWorked ? 0 : 1;
