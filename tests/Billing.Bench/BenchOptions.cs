namespace Billing.Bench;

/// <summary>Command-line options of the bench; see README.md, "Benchmark".</summary>
public sealed class BenchOptions
{
    public int Seconds { get; private set; } = 15;

    public int WarmupSeconds { get; private set; } = 3;

    public int[] Clients { get; private set; } = [1, 8, 32, 64];

    public string[] Paths { get; private set; } = ["cluster", "http"];

    public string[] Accounts { get; private set; } = ["hot", "spread"];

    /// <summary>orleans, seed, hold (place + capture, cluster path), refused (unpayable usages, cluster path), and the DB-only experiments db-single / db-shared (not run by default).</summary>
    public string[] Modes { get; private set; } = ["orleans", "seed"];

    public int SpreadProjects { get; private set; } = 10_000;

    /// <summary>Runs of the seed and each case, alternating; the report adds each case's median ratio and its range.</summary>
    public int Repeat { get; private set; } = 1;

    /// <summary>Silo counts to run the cases with, one after another (each with its own cluster), e.g. [1, 2].</summary>
    public int[] Silos { get; private set; } = [1];

    public string Root { get; private set; } = Directory.GetCurrentDirectory();

    public string? SiloDll { get; private set; }

    public string? GatewayDll { get; private set; }

    /// <summary>Extra Npgsql connection-string settings given to the silo and gateway (e.g. "Max Auto Prepare=20").</summary>
    public string? SiloConnectionExtra { get; private set; }

    public string SiloLogLevel { get; private set; } = "Warning";

    /// <summary>Extra environment variables of the silo process (experiments: GC, thread pool settings).</summary>
    public Dictionary<string, string> SiloEnvironment { get; } = [];

    /// <summary>Extra environment variables of the gateway process (experiments, as for the silo).</summary>
    public Dictionary<string, string> GatewayEnvironment { get; } = [];

    /// <summary>Runs of a case again when other processes used the CPU during it.</summary>
    public int Retries { get; private set; } = 2;

    /// <summary>Longest wait for an idle machine before each case.</summary>
    public int QuietWaitSeconds { get; private set; } = 120;

    /// <summary>Give the experiment's history table the real one's foreign key to the account table.</summary>
    public bool ExperimentForeignKey { get; private set; }

    /// <summary>Writer loops (connections) of the db-shared experiment.</summary>
    public int ExperimentWriters { get; private set; } = 2;

    /// <summary>Extra Npgsql settings for the bench's own connections of the db-single/db-shared experiment.</summary>
    public string? ExperimentConnectionExtra { get; private set; }

    /// <summary>--summary: measure the usage summary's query (and only that) on one account's history.</summary>
    public bool Summary { get; private set; }

    public int SummaryRows { get; private set; } = 1_000_000;

    public int SummaryDays { get; private set; } = 365;

    /// <summary>Drop the usage summary's indexes (0008) before the cases: the write path as it was without them.</summary>
    public bool DropSummaryIndex { get; private set; }

    /// <summary>--xp-sql: SQL run on the bench database after its migrations, before seeding (a schema experiment).</summary>
    public string? ExperimentSql { get; private set; }

    /// <summary>Balance alerts on every project (five thresholds, the top one crossed early), to measure what they cost.</summary>
    public bool Alerts { get; private set; }

    /// <summary>Open credit grants per project: the top-up's and N − 1 promotional ones (--grants).</summary>
    public int Grants { get; private set; } = 1;

    /// <summary>Holds left open on the HOT project through every case (--open-holds): what an account's many active holds cost.</summary>
    public int OpenHolds { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            static void AddVariable(Dictionary<string, string> variables, string assignment)
            {
                var kv = assignment.Split('=', 2);
                variables[kv[0]] = kv.Length > 1 ? kv[1] : "";
            }
            static string[] List(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(v => v.ToLowerInvariant()).ToArray();
            switch (args[i])
            {
                case "--seconds": o.Seconds = int.Parse(Next()); break;
                case "--warmup": o.WarmupSeconds = int.Parse(Next()); break;
                case "--clients": o.Clients = List(Next()).Select(int.Parse).ToArray(); break;
                case "--paths": o.Paths = List(Next()); break;
                case "--accounts": o.Accounts = List(Next()); break;
                case "--modes": o.Modes = List(Next()); break;
                case "--projects": o.SpreadProjects = int.Parse(Next()); break;
                case "--repeat": o.Repeat = int.Parse(Next()); break;
                case "--silos": o.Silos = List(Next()).Select(int.Parse).ToArray(); break;
                case "--root": o.Root = Path.GetFullPath(Next()); break;
                case "--silo-dll": o.SiloDll = Path.GetFullPath(Next()); break;
                case "--gateway-dll": o.GatewayDll = Path.GetFullPath(Next()); break;
                case "--silo-db-options": o.SiloConnectionExtra = Next(); break;
                case "--silo-log-level": o.SiloLogLevel = Next(); break;
                case "--silo-env": AddVariable(o.SiloEnvironment, Next()); break;
                case "--gateway-env": AddVariable(o.GatewayEnvironment, Next()); break;
                case "--retries": o.Retries = int.Parse(Next()); break;
                case "--quiet-wait": o.QuietWaitSeconds = int.Parse(Next()); break;
                case "--xp-fk": o.ExperimentForeignKey = true; break;
                case "--alerts": o.Alerts = true; break;
                case "--grants": o.Grants = int.Parse(Next()); break;
                case "--open-holds": o.OpenHolds = int.Parse(Next()); break;
                case "--xp-writers": o.ExperimentWriters = int.Parse(Next()); break;
                case "--xp-db-options": o.ExperimentConnectionExtra = Next(); break;
                case "--summary": o.Summary = true; break;
                case "--summary-rows": o.SummaryRows = int.Parse(Next()); break;
                case "--summary-days": o.SummaryDays = int.Parse(Next()); break;
                case "--drop-summary-index": o.DropSummaryIndex = true; break;
                case "--xp-sql": o.ExperimentSql = Next(); break;
                case "--smoke":
                    o.Seconds = 2; o.WarmupSeconds = 1; o.Clients = [8]; o.SpreadProjects = 1000;
                    break;
                case "-h" or "--help":
                    Console.WriteLine(Help);
                    Environment.Exit(0);
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}\n{Help}");
            }
        }

        foreach (var p in o.Paths) if (p is not ("cluster" or "http")) throw new ArgumentException($"--paths: unknown path {p}");
        foreach (var a in o.Accounts) if (a is not ("hot" or "spread")) throw new ArgumentException($"--accounts: unknown kind {a}");
        foreach (var m in o.Modes) if (m is not ("orleans" or "hold" or "refused" or "refused-hold" or "seed" or "db-single" or "db-shared" or "db-grain")) throw new ArgumentException($"--modes: unknown mode {m}");
        if (o.Seconds < 1 || o.WarmupSeconds < 0 || o.Clients.Any(c => c < 1)) throw new ArgumentException("--seconds ≥ 1, --warmup ≥ 0, --clients ≥ 1");
        if (o.Grants is < 1 or > 100) throw new ArgumentException("--grants between 1 and 100");
        if (o.Repeat < 1 || o.Silos.Length == 0 || o.Silos.Any(s => s is < 1 or > 4) || o.SpreadProjects < 1)
            throw new ArgumentException("--repeat ≥ 1, --silos between 1 and 4, --projects ≥ 1");
        o.SiloDll ??= Path.Combine(o.Root, "Silo/bin/Release/net10.0/Billing.Silo.dll");
        o.GatewayDll ??= Path.Combine(o.Root, "Client/bin/Release/net10.0/Billing.Client.dll");
        return o;
    }

    public const string Help = """
        Billing.Bench — throughput and latency of recording AI usage, against the seed's lock-based transaction.
          --seconds N         measured seconds per case (15)
          --warmup N          uncounted warm-up seconds per case (3)
          --clients LIST      concurrent callers, e.g. 1,8,32,64 (default)
          --paths LIST        cluster (Orleans client → IUsageGrain), http (gateway POST /v1/usage); default both
          --accounts LIST     hot (one project), spread (--projects projects); default both
          --modes LIST        orleans, seed (default both); hold: IUsageGrain.PlaceHold + CaptureHold per call
                              (cluster path; its ratio is to the seed's one-step deduction); refused: a usage neither
                              account can pay, each refused with its billing error (cluster path: a dry spell); refused-hold:
                              the same with hold placements; db-single, db-shared: DB-only experiment on
                              cross-account round-trip sharing (one statement per account write vs many
                              accounts' writes in one transaction); db-grain: the grains' own
                              LedgerStore.CommitAsync statement without Orleans, one usage per statement
          --projects N        projects of the spread workload (10000); e.g. 1000, 10000, 100000 for how cost grows
          --repeat N          runs the seed and each case N times, alternating, and reports the median ratio and its range (1)
          --silos LIST        silo counts, e.g. 1,2: the cases run with each (own cluster, same database); the report
                              gives the ops/s relative to one silo (1)
          --alerts            balance alerts on every project (5 thresholds; usage crosses the top one): their cost
          --grants N          open credit grants per project (1: the top-up's; N > 1 adds N − 1 promotional grants,
                              spent first): the cost of grants on the write path
          --open-holds N      N holds (a day's ttl, never captured) on the HOT project through every case: what many
                              active holds on one account cost its usage and holds (0)
          --smoke             short run: --seconds 2 --warmup 1 --clients 8 --projects 1000
          --silo-db-options S extra Npgsql settings appended to the silo's and gateway's connection string
          --silo-log-level L  Logging:LogLevel:Default of the silo and gateway (Warning)
          --silo-env K=V      environment variable of the silo process, over its silo.env (repeatable)
          --gateway-env K=V   extra environment variable of the gateway process (repeatable)
          --retries N         runs a case again, up to N times, when other processes used > 30% of a core during it (2)
          --quiet-wait N      before each case, wait up to N s for the machine to be idle (120)
          --summary           only the usage summary: 31 daily buckets of one account (rollup, and straight from the rows)
          --summary-rows N    history rows of that account (1000000); --summary-days N: the days they span (365)
          --drop-summary-index  drop 0008's usage-time indexes first (the write path without them)
          --xp-sql SQL        run SQL on the bench database after its migrations (a schema experiment)
          --xp-writers N      writer connections of db-shared, accounts partitioned over them (2)
          --xp-fk             the experiment's history table gets the real one's foreign key to the account
          --xp-db-options S   extra Npgsql settings for the db-single/db-shared connections
          --root DIR, --silo-dll PATH, --gateway-dll PATH
        Environment: BILLING_TEST_DB = an admin connection string of a PostgreSQL to use instead of a throwaway one.
        """;
}
