using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>Measures one path from a deployment in one address family: true when the packets made it.</summary>
public delegate bool Probe(Deployment deployment, Family family);

/// <summary>
/// One row of the reachability matrix: a path, the setup under which it is measured, and what is expected per mode
/// and family (null: the path does not exist there, not measured).
/// </summary>
public sealed record Row(string Path, Setup Setup, Probe Probe, Func<IpvlanMode, Family, bool?> Expected)
{
    /// <summary>The probe needs pod C on a second network in another subnet.</summary>
    public bool UsesSecondNetwork { get; init; }
    public override string ToString() => $"{Path} [{Setup.Label}]";
}

/// <summary>The rows `make demo` prints and the kernel tests assert, one per path and configuration.</summary>
public static class Rows
{
    const int TcpPort = 7000;

    static bool? Always(IpvlanMode mode, Family family) => true;
    static bool? Never(IpvlanMode mode, Family family) => false;

    public static Row PodToPodSameSubnet { get; } = new("pod -> pod, same subnet", Setup.Plain,
        (d, f) => Programs.Ping(d.A.Namespace, d.B.Address(f)), Always);

    /// <summary>l3 and l3s route between subnets of one master; in l2 that is the gateway's job (not the node's).</summary>
    public static Row PodToPodOtherSubnet { get; } = new("pod -> pod, other subnet", Setup.Plain,
        (d, f) => Programs.Ping(d.A.Namespace, d.C!.Address(f)), (mode, _) => mode == IpvlanMode.L2 ? null : true)
    { UsesSecondNetwork = true };

    /// <summary>l2: the peer shares the pods' subnet; l3: the peer routes the pods' subnets via the node's master IP.</summary>
    public static Row PodToUnderlayPeer { get; } = new("pod -> business peer", Setup.Plain,
        (d, f) => Programs.Ping(d.A.Namespace, d.Segment.PeerAddress(f).Address), Always);

    /// <summary>The reason hostAccess exists: without it a pod cannot reach its own node.</summary>
    public static Row PodToNodeWithoutHostAccess { get; } = new("pod -> node  (no hostAccess)", Setup.Plain, PodToNode, Never);

    public static Row NodeToPodWithoutHostAccess { get; } = new("node -> pod  (no hostAccess)", Setup.Plain, NodeToPod, Never);

    public static Row PodToNodeWithHostAccess { get; } = new("pod -> node", Setup.HostAccess, PodToNode, Always);

    public static Row NodeToPodWithHostAccess { get; } = new("node -> pod", Setup.HostAccess, NodeToPod, Always);

    public static Row PodToNodeTcp { get; } = new("pod -> node, TCP", Setup.HostAccess,
        (d, f) => Programs.TcpConnect(d.A.Namespace, d.Lab.Node, d.Lab.NodePrimaryAddress(f).Address, TcpPort), Always);

    /// <summary>
    /// The management host has no route to pods: only SNAT to the node's address brings replies back. l3 and l3s
    /// pods' IPv4 cannot get there: ipvlan routes it in the node with the master as output interface
    /// (ipvlan_process_v4_outbound sets flowi4_oif), so it only ever leaves through the master; IPv6 is routed freely.
    /// </summary>
    public static Row PodBehindNodeWithSnat { get; } = new("pod -> host behind the node", Setup.EgressThroughNode,
        (d, f) => Programs.Ping(d.A.Namespace, Lab.ManagementPeerAddress(f).Address),
        (mode, family) => mode == IpvlanMode.L2 || family == Family.IPv6);

    public static IReadOnlyList<Row> All { get; } =
    [
        PodToPodSameSubnet, PodToPodOtherSubnet, PodToUnderlayPeer,
        PodToNodeWithoutHostAccess, NodeToPodWithoutHostAccess,
        PodToNodeWithHostAccess, NodeToPodWithHostAccess, PodToNodeTcp,
        PodBehindNodeWithSnat,
    ];

    static bool PodToNode(Deployment d, Family f) => Programs.Ping(d.A.Namespace, d.Lab.NodePrimaryAddress(f).Address);

    static bool NodeToPod(Deployment d, Family f) => Programs.Ping(d.Lab.Node, d.A.Address(f));
}

/// <summary>One measured (or skipped) cell.</summary>
public sealed record Cell(Row Row, Segment Segment, Family Family, bool? Expected, bool? Reached)
{
    public bool AsExpected => Expected == Reached;
    public override string ToString() =>
        $"{Row} in {Segment.ModeName} {Family}: expected {Describe(Expected)}, measured {Describe(Reached)}";

    static string Describe(bool? value) => value switch { true => "reachable", false => "unreachable", null => "n/a" };
}

public static class Matrix
{
    /// <summary>
    /// Measures rows on every segment of the lab, both families. Rows sharing a setup share one deployment per
    /// segment, attached by the plugin before and deleted after.
    /// </summary>
    public static IReadOnlyList<Cell> Measure(Lab lab, IEnumerable<Row> rows, Action<string>? progress = null)
    {
        var cells = new List<Cell>();
        var rowList = rows.ToList();
        foreach (var segment in lab.Layout.Segments)
        {
            foreach (var group in rowList.GroupBy(r => r.Setup))
            {
                var cellsToMeasure = group.SelectMany(row => Enum.GetValues<Family>().Select(family => (row, family)))
                    .Where(c => c.row.Expected(segment.Mode, c.family) is not null).ToList();
                Deployment? deployment = null;
                if (cellsToMeasure.Count > 0)
                {
                    progress?.Invoke($"{segment.ModeName} on {segment.Master}: {group.Key.Label}");
                    deployment = new Deployment(lab, segment, group.Key, cellsToMeasure.Any(c => c.row.UsesSecondNetwork));
                }
                using (deployment)
                {
                    foreach (var row in group)
                        foreach (var family in Enum.GetValues<Family>())
                            cells.Add(row.Expected(segment.Mode, family) is { } expected
                                ? new Cell(row, segment, family, expected, row.Probe(deployment!, family))
                                : new Cell(row, segment, family, null, null));
                }
            }
        }
        return cells;
    }

    /// <summary>A plain text table: a row per path, a column per mode and family, the configuration last.</summary>
    public static string Render(IEnumerable<Row> rows, IReadOnlyList<Cell> cells)
    {
        var columns = cells.Select(c => (c.Segment, c.Family)).Distinct().ToList();
        var header = new List<string> { "path" };
        header.AddRange(columns.Select(c => $"{c.Segment.ModeName} {(c.Family == Family.IPv4 ? "v4" : "v6")}"));
        header.Add("configuration");
        var lines = new List<List<string>> { header };
        foreach (var row in rows)
        {
            var line = new List<string> { row.Path };
            foreach (var (segment, family) in columns)
                line.Add(cells.First(c => c.Row == row && c.Segment == segment && c.Family == family) switch
                {
                    { Expected: null } => "-",
                    { Reached: true, AsExpected: true } => "yes",
                    { Reached: false, AsExpected: true } => "no",
                    { Reached: true } => "YES(!)",
                    _ => "NO(!)",
                });
            line.Add(row.Setup.Label);
            lines.Add(line);
        }

        var widths = header.Select((_, i) => lines.Max(l => l[i].Length)).ToList();
        var text = new StringBuilder();
        foreach (var (line, index) in lines.Select((l, i) => (l, i)))
        {
            text.AppendLine(string.Join("  ", line.Select((cell, i) => i == line.Count - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
            if (index == 0)
                text.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        }
        return text.ToString();
    }
}
