// The canvas: elements as nodes, branches as labelled edges (React Flow). The document is the
// source of truth; React Flow keeps only what it measures (node sizes) and reports drags,
// selections, connections and deletions back.
import { memo, useCallback, useEffect, useMemo, useState } from 'react';
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  MiniMap,
  Position as HandlePosition,
  ReactFlow,
  applyNodeChanges,
  useNodesInitialized,
  useReactFlow,
  type Connection,
  type Edge,
  type Node,
  type NodeChange,
  type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { branchesOf, type FlowDoc, type Position, type Problem } from './model.js';

export interface Trail {
  elements: ReadonlySet<string>;
  /** `from|branch` of every branch taken. */
  branches: ReadonlySet<string>;
}

interface ElementNodeData extends Record<string, unknown> {
  elementId: string;
  type: string;
  label?: string;
  start: boolean;
  errors: number;
  warnings: number;
  onTrail: boolean;
}

type ElementNode = Node<ElementNodeData, 'element'>;

const ElementNodeView = memo(function ElementNodeView({ data }: NodeProps<ElementNode>) {
  return (
    <div className="node-body">
      <Handle type="target" position={HandlePosition.Top} />
      <div className="node-type">{data.type}</div>
      <div className="node-id">{data.elementId}</div>
      {data.label && <div className="node-label">{data.label}</div>}
      <div className="node-badges">
        {data.start && <span className="badge start">start</span>}
        {data.errors > 0 && (
          <span className="badge error" data-testid={`problems-${data.elementId}`}>
            {data.errors} error{data.errors > 1 ? 's' : ''}
          </span>
        )}
        {data.warnings > 0 && (
          <span className="badge warning">
            {data.warnings} warning{data.warnings > 1 ? 's' : ''}
          </span>
        )}
        {data.onTrail && <span className="badge trail">taken</span>}
      </div>
      <Handle type="source" position={HandlePosition.Bottom} />
    </div>
  );
});

const nodeTypes = { element: ElementNodeView };

/** Keep every element in view when elements come or go (add, delete, import) or are arranged; not on a drag. */
function FitOnChange({ fitKey }: { fitKey: string }) {
  const { fitView } = useReactFlow();
  const initialized = useNodesInitialized();
  useEffect(() => {
    if (initialized) void fitView({ maxZoom: 1, padding: 0.15 });
  }, [fitKey, initialized, fitView]);
  return null;
}

export interface CanvasProps {
  doc: FlowDoc;
  positions: Record<string, Position>;
  selectedId: string | undefined;
  problems: ReadonlyMap<string, Problem[]>;
  trail: Trail | undefined;
  /** Counts the Arrange actions: the view refits after each. */
  arranged: number;
  onSelect: (id: string | undefined) => void;
  onMove: (id: string, position: Position) => void;
  onConnect: (source: string, target: string) => void;
  onDeleteElements: (ids: string[]) => void;
  onDeleteBranches: (branches: Array<{ source: string; path: Array<string | number> }>) => void;
}

interface EdgeData extends Record<string, unknown> {
  paths: Array<Array<string | number>>;
}

export function Canvas(props: CanvasProps) {
  const { doc, positions, selectedId, problems, trail } = props;
  const [nodes, setNodes] = useState<ElementNode[]>([]);

  useEffect(() => {
    setNodes((previous) => {
      const measured = new Map(previous.map((n) => [n.id, n.measured]));
      return doc.elements.map((el): ElementNode => {
        const own = problems.get(el.id) ?? [];
        const errors = own.filter((p) => p.severity !== 'warning').length;
        const warnings = own.length - errors;
        const onTrail = trail?.elements.has(el.id) ?? false;
        return {
          id: el.id,
          type: 'element',
          position: positions[el.id] ?? { x: 0, y: 0 },
          selected: el.id === selectedId,
          measured: measured.get(el.id),
          ariaLabel: `${el.type} ${el.id}${errors ? `, ${errors} error${errors > 1 ? 's' : ''}` : ''}${onTrail ? ', taken' : ''}`,
          className: [errors ? 'has-error' : '', onTrail ? 'on-trail' : '', el.id === doc.start ? 'is-start' : '']
            .filter(Boolean)
            .join(' '),
          data: {
            elementId: el.id,
            type: el.type,
            label: typeof el.label === 'string' ? el.label : undefined,
            start: el.id === doc.start,
            errors,
            warnings,
            onTrail,
          },
        };
      });
    });
  }, [doc, positions, selectedId, problems, trail]);

  const edges = useMemo(() => {
    const ids = new Set(doc.elements.map((el) => el.id));
    const byPair = new Map<string, Edge<EdgeData>>();
    for (const el of doc.elements)
      for (const slot of branchesOf(el)) {
        if (typeof slot.target !== 'string' || !ids.has(slot.target)) continue;
        const key = `${el.id}->${slot.target}`;
        const taken = trail?.branches.has(`${el.id}|${slot.name}`) ?? false;
        const existing = byPair.get(key);
        if (existing) {
          existing.label = `${String(existing.label)}, ${slot.name}`;
          existing.data?.paths.push(slot.path);
          if (taken) {
            existing.animated = true;
            existing.className = 'on-trail';
          }
          continue;
        }
        byPair.set(key, {
          id: key,
          source: el.id,
          target: slot.target,
          label: slot.name,
          animated: taken,
          className: taken ? 'on-trail' : undefined,
          markerEnd: { type: MarkerType.ArrowClosed },
          ariaLabel: `branch from ${el.id} to ${slot.target}`,
          data: { paths: [slot.path] },
        });
      }
    return [...byPair.values()].map((edge) => ({
      ...edge,
      ariaLabel: `${String(edge.label)}: ${edge.ariaLabel ?? ''}`,
    }));
  }, [doc, trail]);

  const { onSelect, onMove, onConnect, onDeleteElements, onDeleteBranches } = props;
  const onNodesChange = useCallback(
    (changes: NodeChange<ElementNode>[]) => {
      setNodes((current) => applyNodeChanges(changes, current));
      for (const change of changes) {
        if (change.type === 'position' && change.position && change.dragging === false)
          onMove(change.id, change.position);
        if (change.type === 'position' && change.position && change.dragging === undefined)
          onMove(change.id, change.position); // moved with the arrow keys
        if (change.type === 'select' && change.selected) onSelect(change.id);
      }
    },
    [onMove, onSelect],
  );

  return (
    <div className="canvas" role="region" aria-label="Flow canvas">
      <ReactFlow<ElementNode, Edge<EdgeData>>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onConnect={(c: Connection) => onConnect(c.source, c.target)}
        onNodesDelete={(deleted) => onDeleteElements(deleted.map((n) => n.id))}
        onEdgesDelete={(deleted) =>
          onDeleteBranches(deleted.flatMap((e) => (e.data?.paths ?? []).map((path) => ({ source: e.source, path }))))
        }
        onPaneClick={() => onSelect(undefined)}
        deleteKeyCode={['Delete', 'Backspace']}
        multiSelectionKeyCode={null}
        selectionKeyCode={null}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
        ariaLabelConfig={{
          'node.a11yDescription.default':
            'Press Enter or Space to select the element, Delete to remove it, the arrow keys to move it.',
        }}
      >
        <FitOnChange fitKey={`${doc.elements.length}:${props.arranged}`} />
        <Background />
        <Controls />
        <MiniMap pannable zoomable ariaLabel="Overview of the flow" />
      </ReactFlow>
    </div>
  );
}
