using Scriban;
using Scriban.Functions;
using Scriban.Runtime;

namespace B25.Alerting.Delivery.Presentation;

/// <summary>
/// Renders the service's Scriban templates (Slack, mail) from models the renderers fill as <see cref="ScriptObject"/>s.
/// Scriban's builtins and the renderer's own functions are built once and shared by every render on every thread, so a
/// render creates only what is its own (Scriban's default clones all its builtins for every context). What is shared is
/// read-only all the way down: a template that assigns to a builtin's name only shadows it in its own render, and one
/// that writes into a builtin (<c>string.x = 1</c>, <c>date.format = ..</c>) fails its render instead of changing what
/// the renders after it see. The model is data (alert labels and annotations as values), never template source.
/// </summary>
internal sealed class TemplateRendering
{
    private static readonly MemberRenamerDelegate KeepNames = member => member.Name;

    private readonly ScriptObject _builtins;

    /// <param name="functions">What the templates call besides Scriban's builtins.</param>
    public TemplateRendering(params (string Name, Delegate Function)[] functions)
    {
        var builtins = new BuiltinFunctions();
        foreach (var (name, function) in functions) builtins.Import(name, function);
        Freeze(builtins);
        _builtins = builtins;
    }

    /// <summary>
    /// A context for one model, whose templates render on it one after the other (<see cref="Render"/>): the model is
    /// set up once for all of them. A context is one render's, on one thread; the model is read-only from here on.
    /// </summary>
    public TemplateContext Context(ScriptObject model)
    {
        model.IsReadOnly = true;
        var context = new TemplateContext(_builtins) { StrictVariables = true, MemberRenamer = KeepNames, LoopLimit = 100_000 };
        context.PushGlobal(model);
        return context;
    }

    /// <summary>Renders a template on a model's context; the variables the template sets are gone when it ends.</summary>
    public static string Render(TemplateContext context, Template template)
    {
        context.PushGlobal(new ScriptObject());
        try
        {
            return template.Render(context);
        }
        finally
        {
            context.PopGlobal();
        }
    }

    /// <summary>A model object (or an item of one of its lists), read-only once filled: a template cannot change it for the next one.</summary>
    public static ScriptObject Data(ScriptObject values)
    {
        values.IsReadOnly = true;
        return values;
    }

    private static void Freeze(ScriptObject scriptObject)
    {
        scriptObject.IsReadOnly = true;
        foreach (var value in scriptObject.Values)
            if (value is ScriptObject inner && !inner.IsReadOnly) Freeze(inner);
    }
}
