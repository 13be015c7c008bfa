"use strict";(self.rspackChunkaiops_lab_jupyterlab=self.rspackChunkaiops_lab_jupyterlab||[]).push([[232],{475(e,o,r){var a=r(601),t=r.n(a),n=r(314),p=(r.n(n))()(t());p.push([e.id,`/* aiops_lab: status bar item and live GPU panel */

.jp-aiops-StatusItem {
  display: flex;
  align-items: center;
  gap: 8px;
  padding: 0 6px;
  cursor: pointer;
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  line-height: 24px;
  white-space: nowrap;
}

.jp-aiops-StatusItem:hover {
  background: var(--jp-layout-color2);
}

.jp-aiops-StatusItem-backend[data-backend='gpu'] {
  color: var(--jp-success-color1);
  font-weight: 600;
}

.jp-aiops-StatusItem-gpu[data-gpu='no'],
.jp-aiops-StatusItem-tracking {
  color: var(--jp-ui-font-color2);
}

.jp-aiops-GpuPanel {
  overflow-y: auto;
  padding: 8px 12px;
  min-width: 240px;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
}

.jp-aiops-GpuPanel-header {
  display: flex;
  align-items: center;
  justify-content: space-between;
  gap: 8px;
}

.jp-aiops-GpuPanel-header h2 {
  margin: 4px 0;
  font-size: var(--jp-ui-font-size2);
  font-weight: 600;
}

.jp-aiops-GpuPanel-summary {
  margin: 6px 0 10px;
}

.jp-aiops-line {
  display: flex;
  gap: 6px;
  margin: 2px 0;
  word-break: break-word;
}

.jp-aiops-label {
  flex: 0 0 64px;
  color: var(--jp-ui-font-color2);
}

.jp-aiops-message {
  margin: 4px 0;
  color: var(--jp-ui-font-color2);
}

.jp-aiops-NoGpu {
  padding: 10px;
  border: 1px solid var(--jp-border-color2);
  border-left: 4px solid var(--jp-warn-color1);
  border-radius: 2px;
  background: var(--jp-layout-color2);
}

.jp-aiops-NoGpu strong {
  font-size: var(--jp-ui-font-size2);
}

.jp-aiops-GpuCard {
  margin: 0 0 12px;
  padding: 6px 8px;
  border: 1px solid var(--jp-border-color2);
  border-radius: 2px;
}

.jp-aiops-GpuCard-title {
  font-weight: 600;
}

.jp-aiops-GpuCard-figures {
  margin: 2px 0 4px;
  color: var(--jp-ui-font-color2);
}

.jp-aiops-chart {
  display: block;
  width: 100%;
  height: 90px;
  background: var(--jp-layout-color0);
}

.jp-aiops-chart path {
  fill: none;
  stroke-width: 1.5px;
}

.jp-aiops-chart .jp-aiops-grid {
  stroke: var(--jp-border-color2);
  stroke-width: 1px;
  vector-effect: non-scaling-stroke;
}

.jp-aiops-chart path.jp-aiops-util,
.jp-aiops-legend .jp-aiops-util {
  stroke: var(--jp-brand-color1);
  color: var(--jp-brand-color1);
}

.jp-aiops-chart path.jp-aiops-mem,
.jp-aiops-legend .jp-aiops-mem {
  stroke: var(--jp-warn-color1);
  color: var(--jp-warn-color1);
}

.jp-aiops-legend {
  display: flex;
  gap: 12px;
  margin-top: 2px;
  font-size: var(--jp-ui-font-size0);
}
`,""]),r.d(o,{},{A:p})},314(e){e.exports=function(e){var o=[];return o.toString=function(){return this.map(function(o){var r="",a=void 0!==o[5];return o[4]&&(r+="@supports (".concat(o[4],") {")),o[2]&&(r+="@media ".concat(o[2]," {")),a&&(r+="@layer".concat(o[5].length>0?" ".concat(o[5]):""," {")),r+=e(o),a&&(r+="}"),o[2]&&(r+="}"),o[4]&&(r+="}"),r}).join("")},o.i=function(e,r,a,t,n){"string"==typeof e&&(e=[[null,e,void 0]]);var p={};if(a)for(var i=0;i<this.length;i++){var s=this[i][0];null!=s&&(p[s]=!0)}for(var c=0;c<e.length;c++){var l=[].concat(e[c]);a&&p[l[0]]||(void 0!==n&&(void 0===l[5]||(l[1]="@layer".concat(l[5].length>0?" ".concat(l[5]):""," {").concat(l[1],"}")),l[5]=n),r&&(l[2]&&(l[1]="@media ".concat(l[2]," {").concat(l[1],"}")),l[2]=r),t&&(l[4]?(l[1]="@supports (".concat(l[4],") {").concat(l[1],"}"),l[4]=t):l[4]="".concat(t)),o.push(l))}},o}},601(e){e.exports=function(e){return e[1]}},72(e){var o=[];function r(e){for(var r=-1,a=0;a<o.length;a++)if(o[a].identifier===e){r=a;break}return r}function a(e,a){for(var t={},n=[],p=0;p<e.length;p++){var i=e[p],s=a.base?i[0]+a.base:i[0],c=t[s]||0,l="".concat(s," ").concat(c);t[s]=c+1;var u=r(l),d={css:i[1],media:i[2],sourceMap:i[3],supports:i[4],layer:i[5]};if(-1!==u)o[u].references++,o[u].updater(d);else{var f=function(e,o){var r=o.domAPI(o);return r.update(e),function(o){o?(o.css!==e.css||o.media!==e.media||o.sourceMap!==e.sourceMap||o.supports!==e.supports||o.layer!==e.layer)&&r.update(e=o):r.remove()}}(d,a);a.byIndex=p,o.splice(p,0,{identifier:l,updater:f,references:1})}n.push(l)}return n}e.exports=function(e,t){var n=a(e=e||[],t=t||{});return function(e){e=e||[];for(var p=0;p<n.length;p++){var i=r(n[p]);o[i].references--}for(var s=a(e,t),c=0;c<n.length;c++){var l=r(n[c]);0===o[l].references&&(o[l].updater(),o.splice(l,1))}n=s}}},659(e){var o={};e.exports=function(e,r){var a=function(e){if(void 0===o[e]){var r=document.querySelector(e);if(window.HTMLIFrameElement&&r instanceof window.HTMLIFrameElement)try{r=r.contentDocument.head}catch(e){r=null}o[e]=r}return o[e]}(e);if(!a)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");a.appendChild(r)}},540(e){e.exports=function(e){var o=document.createElement("style");return e.setAttributes(o,e.attributes),e.insert(o,e.options),o}},56(e,o,r){e.exports=function(e){var o=r.nc;o&&e.setAttribute("nonce",o)}},825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var o=e.insertStyleElement(e);return{update:function(r){var a,t,n;a="",r.supports&&(a+="@supports (".concat(r.supports,") {")),r.media&&(a+="@media ".concat(r.media," {")),(t=void 0!==r.layer)&&(a+="@layer".concat(r.layer.length>0?" ".concat(r.layer):""," {")),a+=r.css,t&&(a+="}"),r.media&&(a+="}"),r.supports&&(a+="}"),(n=r.sourceMap)&&"u">typeof btoa&&(a+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(n))))," */")),e.styleTagTransform(a,o,e.options)},remove:function(){var e;null===(e=o).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,o){if(o.styleSheet)o.styleSheet.cssText=e;else{for(;o.firstChild;)o.removeChild(o.firstChild);o.appendChild(document.createTextNode(e))}}},579(e,o,r){var a=r(72),t=r.n(a),n=r(825),p=r.n(n),i=r(659),s=r.n(i),c=r(56),l=r.n(c),u=r(540),d=r.n(u),f=r(113),v=r.n(f),j=r(475),h={};h.styleTagTransform=v(),h.setAttributes=l(),h.insert=s().bind(null,"head"),h.domAPI=p(),h.insertStyleElement=d(),t()(j.A,h),j.A&&j.A.locals&&j.A.locals}}]);